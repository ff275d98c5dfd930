namespace Loom.Gateway.Templates;

/// <summary>The `is` tests (`x is defined`, `x is string`, `x is equalto 3`).</summary>
internal static class JinjaTestFunctions
{
    public static bool Exists(string name) => name is "defined" or "undefined" or "none" or "string" or "number"
        or "integer" or "float" or "mapping" or "iterable" or "sequence" or "boolean" or "true" or "false"
        or "callable" or "odd" or "even" or "divisibleby" or "lower" or "upper" or "sameas" or "in"
        or "equalto" or "eq" or "==" or "ne" or "!=" or "lt" or "<" or "le" or "<=" or "gt" or ">" or "ge" or ">=" or "greaterthan" or "lessthan";

    public static bool Apply(string name, object? v, List<object?> args)
    {
        object? Arg0() => args.Count > 0 ? args[0] : throw new JinjaException($"Test '{name}' needs an argument");
        return name switch
        {
            "defined" => v is not JinjaUndefined,
            "undefined" => v is JinjaUndefined,
            "none" => v is null,
            "string" => v is string,
            "number" => v is long or double,
            "integer" => v is long,
            "float" => v is double,
            "boolean" => v is bool,
            "true" => v is true,
            "false" => v is false,
            "mapping" => v is JinjaDict or JinjaNamespace,
            "iterable" => v is string or List<object?> or JinjaDict,
            "sequence" => v is string or List<object?> or JinjaDict,
            "callable" => v is JinjaCallable,
            "odd" => v is long o && (o % 2) != 0,
            "even" => v is long e && (e % 2) == 0,
            "divisibleby" => v is long a && Arg0() is long b && b != 0 && a % b == 0,
            "lower" => v is string s && s == s.ToLowerInvariant(),
            "upper" => v is string u && u == u.ToUpperInvariant(),
            "sameas" => ReferenceEquals(v, Arg0()) || (v is bool or null && JinjaValues.AreEqual(v, Arg0()) && Arg0() is bool or null),
            "in" => JinjaOperators.Contains(Arg0(), v),
            "equalto" or "eq" or "==" => JinjaValues.AreEqual(v, Arg0()),
            "ne" or "!=" => !JinjaValues.AreEqual(v, Arg0()),
            "lt" or "<" or "lessthan" => JinjaValues.Compare(v, Arg0()) < 0,
            "le" or "<=" => JinjaValues.Compare(v, Arg0()) <= 0,
            "gt" or ">" or "greaterthan" => JinjaValues.Compare(v, Arg0()) > 0,
            "ge" or ">=" => JinjaValues.Compare(v, Arg0()) >= 0,
            _ => throw new JinjaException($"Unknown test '{name}'"),
        };
    }
}
