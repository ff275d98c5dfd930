namespace Loom.Gateway.Tests.Tokenization;

/// <summary>
/// Templates with the output Python's Jinja2 gives for them (transformers' environment: see
/// <see cref="PythonJinja"/>). The expected strings are committed so the CPU-only run checks Loom
/// without Python; JinjaGoldenTests re-renders them with Python Jinja2 when it is installed, so a
/// wrong literal cannot hide here.
/// </summary>
internal static class JinjaGoldenCases
{
    public sealed record Case(string Id, string Template, string Context, string Expected);

    /// <summary>A template Python Jinja2 refuses (at parse or render time); Loom must refuse it too,
    /// with a message containing <paramref name="LoomMessage"/>.</summary>
    public sealed record ErrorCase(string Id, string Template, string Context, string LoomMessage);

    private const string Tools = """
        [{"type":"function","function":{"name":"get_weather","description":"Weather in °C for a city, e.g. \"Zürich\"",
          "parameters":{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer","minimum":1}},"required":["city"]}}},
         {"type":"function","function":{"name":"search","description":"Web search","parameters":{"type":"object","properties":{},"required":[]}}}]
        """;

    private const string Mixed = """
        {"x": {"b": [1, 2.5, "é\n\"", null, true], "a": {"z": [], "y": {}}, "emoji": "😀 ÿ \u007f \u0001"}}
        """;

    // Kimi-K2 style: tools and object-valued tool arguments printed as compact JSON.
    private const string KimiStyle = """
        {%- if tools -%}
        <|im_system|>tool_declare<|im_middle|>{{ tools | tojson(separators=(',', ':')) }}<|im_end|>
        {%- endif -%}
        {%- for message in messages -%}
        <|im_{{ message.role }}|>{{ message.role }}<|im_middle|>
        {%- if message.tool_calls is defined -%}
        {%- for tc in message.tool_calls -%}
        <|tool_call_begin|>{{ tc.id }}<|tool_call_argument_begin|>
        {{- tc.function.arguments | tojson(separators=(',', ':')) if tc.function.arguments is mapping else tc.function.arguments -}}
        <|tool_call_end|>
        {%- endfor -%}
        {%- else -%}
        {{ message.content }}
        {%- endif -%}
        <|im_end|>
        {%- endfor -%}
        {%- if add_generation_prompt -%}<|im_assistant|>assistant<|im_middle|>{%- endif -%}
        """;

    private const string KimiContext = """
        {"tools": TOOLS, "add_generation_prompt": true, "messages": [
          {"role": "user", "content": "Weather in Zürich?"},
          {"role": "assistant", "content": "", "tool_calls": [{"id": "functions.get_weather:0", "type": "function",
            "function": {"name": "get_weather", "arguments": {"city": "Zürich", "days": 2}}}]},
          {"role": "tool", "content": "{\"temp\": 21}"}]}
        """;

    public static readonly IReadOnlyList<Case> All =
    [
        // tojson keyword arguments, as json.dumps takes them
        new("tojson-default", "{{ x | tojson }}", Mixed, "{\"b\": [1, 2.5, \"é\\n\\\"\", null, true], \"a\": {\"z\": [], \"y\": {}}, \"emoji\": \"\uD83D\uDE00 ÿ \u007F \\u0001\"}"),
        new("tojson-separators", "{{ x | tojson(separators=(',', ':')) }}", Mixed, "{\"b\":[1,2.5,\"é\\n\\\"\",null,true],\"a\":{\"z\":[],\"y\":{}},\"emoji\":\"\uD83D\uDE00 ÿ \u007F \\u0001\"}"),
        new("tojson-separators-list-and-string", "{{ x.b | tojson(separators=['|', '=']) }} {{ x.a | tojson(separators=',:') }}", Mixed, "[1|2.5|\"é\\n\\\"\"|null|true] {\"z\":[],\"y\":{}}"),
        new("tojson-ensure-ascii", "{{ x | tojson(ensure_ascii=true) }}", Mixed, "{\"b\": [1, 2.5, \"\\u00e9\\n\\\"\", null, true], \"a\": {\"z\": [], \"y\": {}}, \"emoji\": \"\\ud83d\\ude00 \\u00ff \\u007f \\u0001\"}"),
        new("tojson-indent-2", "{{ x | tojson(indent=2) }}", Mixed, "{\n  \"b\": [\n    1,\n    2.5,\n    \"é\\n\\\"\",\n    null,\n    true\n  ],\n  \"a\": {\n    \"z\": [],\n    \"y\": {}\n  },\n  \"emoji\": \"\uD83D\uDE00 ÿ \u007F \\u0001\"\n}"),
        new("tojson-indent-0", "{{ x.b | tojson(indent=0) }}", Mixed, "[\n1,\n2.5,\n\"é\\n\\\"\",\nnull,\ntrue\n]"),
        new("tojson-indent-string", "{{ x.a | tojson(indent='\\t') }}", Mixed, "{\n\t\"z\": [],\n\t\"y\": {}\n}"),
        new("tojson-indent-negative", "{{ [1, [2]] | tojson(indent=-3) }}", Mixed, "[\n1,\n[\n2\n]\n]"),
        new("tojson-indent-with-separators", "{{ x.b | tojson(indent=1, separators=(', ', ' = ')) }}", Mixed, "[\n 1, \n 2.5, \n \"é\\n\\\"\", \n null, \n true\n]"),
        new("tojson-sort-keys", "{{ {'b': 1, 'a': {'d': 2, 'c': 3}, '\uff01': 4, '😀': 5, 'B': 6} | tojson(sort_keys=true) }}", Mixed, "{\"B\": 6, \"a\": {\"c\": 3, \"d\": 2}, \"b\": 1, \"！\": 4, \"\uD83D\uDE00\": 5}"),
        new("tojson-all-options", "{{ x | tojson(ensure_ascii=true, indent=2, separators=(';', '='), sort_keys=true) }}", Mixed, "{\n  \"a\"={\n    \"y\"={};\n    \"z\"=[]\n  };\n  \"b\"=[\n    1;\n    2.5;\n    \"\\u00e9\\n\\\"\";\n    null;\n    true\n  ];\n  \"emoji\"=\"\\ud83d\\ude00 \\u00ff \\u007f \\u0001\"\n}"),
        new("tojson-positional", "{{ x.emoji | tojson(true) }} {{ x.b | tojson(false, 1) }}", Mixed, "\"\\ud83d\\ude00 \\u00ff \\u007f \\u0001\" [\n 1,\n 2.5,\n \"é\\n\\\"\",\n null,\n true\n]"),
        new("tojson-numbers", "{{ [1.0, 2.5, 1e20, 1e-7, 0.1 + 0.2, -0.0, 10 ** 18, 7 / 2] | tojson }}", "{}", "[1.0, 2.5, 1e+20, 1e-07, 0.30000000000000004, -0.0, 1000000000000000000, 3.5]"),
        new("tojson-kimi-k2-style", KimiStyle, KimiContext.Replace("TOOLS", Tools, StringComparison.Ordinal), "<|im_system|>tool_declare<|im_middle|>[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather in °C for a city, e.g. \\\"Zürich\\\"\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},\"days\":{\"type\":\"integer\",\"minimum\":1}},\"required\":[\"city\"]}}},{\"type\":\"function\",\"function\":{\"name\":\"search\",\"description\":\"Web search\",\"parameters\":{\"type\":\"object\",\"properties\":{},\"required\":[]}}}]<|im_end|><|im_user|>user<|im_middle|>Weather in Zürich?<|im_end|><|im_assistant|>assistant<|im_middle|><|tool_call_begin|>functions.get_weather:0<|tool_call_argument_begin|>{\"city\":\"Zürich\",\"days\":2}<|tool_call_end|><|im_end|><|im_tool|>tool<|im_middle|>{\"temp\": 21}<|im_end|><|im_assistant|>assistant<|im_middle|>"),

    ];

    public static readonly IReadOnlyList<ErrorCase> Errors =
    [
        new("tojson-unknown-keyword", "{{ [1] | tojson(indnet=2) }}", "{}", "unexpected keyword argument 'indnet'"),
        new("tojson-bad-separators", "{{ [1] | tojson(separators=(',',)) }}", "{}", "separators must be a pair of strings"),
        new("tojson-too-many-arguments", "{{ [1] | tojson(false, 2, none, false, 5) }}", "{}", "at most 4 arguments"),
        new("tojson-twice", "{{ [1] | tojson(false, ensure_ascii=true) }}", "{}", "multiple values for argument 'ensure_ascii'"),
    ];
}
