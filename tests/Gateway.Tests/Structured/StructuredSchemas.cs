namespace Loom.Gateway.Tests.Structured;

/// <summary>
/// Twenty schemas that between them use every keyword of the supported subset. Strings carry a
/// maxLength (or a format, pattern or enum) because a random-weight model would otherwise never stop.
/// </summary>
internal static class StructuredSchemas
{
    public static readonly string[] All =
    [
        """{"type":"object","properties":{"name":{"type":"string","maxLength":12},"age":{"type":"integer","minimum":0,"maximum":120}},"required":["name","age"],"additionalProperties":false}""",
        """{"type":"array","items":{"type":"integer","minimum":-5,"maximum":5},"minItems":1,"maxItems":4}""",
        """{"type":"string","minLength":2,"maxLength":8}""",
        """{"type":"number"}""",
        """{"type":"integer","minimum":1000,"maximum":99999}""",
        """{"type":"boolean"}""",
        """{"type":"null"}""",
        """{"enum":["red","green","blue",42,null]}""",
        """{"type":"object","properties":{"version":{"const":"1.0"},"kind":{"const":{"a":[1,2]}}},"required":["version","kind"],"additionalProperties":false}""",
        """{"type":"object","properties":{"a":{"type":"string","maxLength":5},"b":{"type":"boolean"},"c":{"type":"null"}},"additionalProperties":false}""",
        """{"anyOf":[{"type":"string","maxLength":5},{"type":"integer","minimum":0,"maximum":9},{"type":"array","items":{"type":"boolean"},"maxItems":2}]}""",
        """{"oneOf":[{"type":"object","properties":{"cat":{"type":"string","maxLength":6}},"required":["cat"],"additionalProperties":false},{"type":"object","properties":{"dog":{"type":"integer","minimum":0,"maximum":10}},"required":["dog"],"additionalProperties":false}]}""",
        """{"$defs":{"point":{"type":"object","properties":{"x":{"type":"integer","minimum":-100,"maximum":100},"y":{"type":"integer","minimum":-100,"maximum":100}},"required":["x","y"],"additionalProperties":false}},"type":"object","properties":{"from":{"$ref":"#/$defs/point"},"to":{"$ref":"#/$defs/point"}},"required":["from","to"],"additionalProperties":false}""",
        """{"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer","minimum":0,"maximum":9},"children":{"type":"array","items":{"$ref":"#/$defs/node"},"maxItems":2}},"required":["v"],"additionalProperties":false}},"$ref":"#/$defs/node"}""",
        """{"type":"object","properties":{"code":{"type":"string","pattern":"^[A-Z]{3}-[0-9]{2,4}$"},"quote":{"type":"string","pattern":"^(say \"hi\"|a\\\\b|é+)$"}},"required":["code","quote"],"additionalProperties":false}""",
        """{"type":"object","properties":{"d":{"type":"string","format":"date"},"t":{"type":"string","format":"time"}},"required":["d","t"],"additionalProperties":false}""",
        """{"type":"object","properties":{"when":{"type":"string","format":"date-time"},"id":{"type":"string","format":"uuid"},"mail":{"type":"string","format":"email"}},"required":["when","id","mail"],"additionalProperties":false}""",
        """{"type":["string","null"],"maxLength":4}""",
        """
        {"type":"object","properties":{
          "user":{"type":"object","properties":{"id":{"type":"integer","minimum":1,"maximum":9999},"name":{"type":"string","minLength":1,"maxLength":10},"email":{"type":"string","format":"email"}},"required":["id","name"],"additionalProperties":false},
          "items":{"type":"array","items":{"type":"object","properties":{"sku":{"type":"string","pattern":"^[A-Z]{2}[0-9]{3}$"},"qty":{"type":"integer","minimum":1,"maximum":99},"price":{"type":"number"}},"required":["sku","qty"],"additionalProperties":false},"minItems":1,"maxItems":2},
          "paid":{"type":"boolean"},"note":{"type":["string","null"],"maxLength":10}},
         "required":["user","items","paid"],"additionalProperties":false}
        """,
        """{"type":"object","properties":{"level":{"type":"integer","exclusiveMinimum":0,"exclusiveMaximum":4},"tags":{"type":"array","items":{"enum":["a","b","c"]},"minItems":2,"maxItems":3}},"required":["level","tags"],"additionalProperties":false}""",
    ];
}
