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

    // AI21 Jamba 1.6 style: the macros to run and their argument lists are collected first,
    // then each macro is called with its arguments spread by *.
    private const string JambaStyle = """
        {%- macro handle_tools(tools) -%}
        <|tools|>{% for t in tools %}{{ t.function.name }}{{ ', ' if not loop.last }}{% endfor %}
        {%- endmacro -%}
        {%- macro handle_documents(docs, title='Documents') -%}
        {{ title }}:{% for d in docs %} [{{ d.title }}]{% endfor %}
        {%- endmacro -%}
        {%- set macros_to_call = [] -%}
        {%- set params_for_macros = [] -%}
        {%- if tools -%}
        {%- set macros_to_call = macros_to_call + [handle_tools] -%}
        {%- set params_for_macros = params_for_macros + [[tools]] -%}
        {%- endif -%}
        {%- if documents -%}
        {%- set macros_to_call = macros_to_call + [handle_documents] -%}
        {%- set params_for_macros = params_for_macros + [[documents, 'Docs']] -%}
        {%- endif -%}
        {%- for i in range(macros_to_call | length) -%}
        {{ macros_to_call[i](*params_for_macros[i]) }}
        {% endfor -%}
        {%- for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}
        """;

    private const string JambaContext = """
        {"tools": TOOLS, "documents": [{"title": "A"}, {"title": "B"}], "messages": [{"role": "user", "content": "Hi"}]}
        """;

    // ByteDance Seed-OSS style: a table keyed by int, walked in key order and indexed by int.
    private const string SeedStyle = """
        {%- set budgets = {0: 0, 512: 128, 1024: 256, 16384: 1024} -%}
        {%- set ns = namespace(interval=None) -%}
        {%- for k, v in budgets | dictsort -%}
        {%- if ns.interval is none and thinking_budget <= k -%}{%- set ns.interval = v -%}{%- endif -%}
        {%- endfor -%}
        {{ ns.interval }} {{ budgets[16384] }} {{ budgets | dictsort | map('first') | join(',') }} {{ 512 in budgets }} {{ '512' in budgets }} {{ budgets.get(0) }}
        {{ {1: 'a', 1.0: 'b', true: 'c'} }} {{ {2: 'x', 1: 'y'} | tojson(sort_keys=true) }} {{ {1.5: 1, true: 2, 'k': 3} | tojson }}
        """;

    // A macro that shows how its arguments were bound.
    private const string Show = "{% macro m(a, b, c='C') %}[{{ a }}|{{ b }}|{{ c }}|{{ varargs | join(',') }}|{{ kwargs }}]{% endmacro %}";

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

        // *args and **kwargs at call sites
        new("star-jamba-style", JambaStyle, JambaContext.Replace("TOOLS", Tools, StringComparison.Ordinal), "<|tools|>get_weather, search\nDocs: [A] [B]\n<|user|>Hi"),
        new("star-macro-args", Show + "{{ m(*[1, 2]) }}{{ m(*[1, 2, 3, 4]) }}{{ m(0, *(5, 6)) }}", "{}", "[1|2|C||{}][1|2|3|4|{}][0|5|6||{}]"),
        new("star-macro-kwargs", Show + "{{ m(1, **{'b': 2, 'd': 4}) }}{{ m(**{'c': 3, 'a': 1, 'b': 2}) }}", "{}", "[1|2|C||{'d': 4}][1|2|3||{}]"),
        new("star-macro-both", Show + "{{ m(*[1], c=3, **{'b': 2}) }}{{ m(b=2, *'x') }}", "{}", "[1|2|3||{}][x|2|C||{}]"),
        new("star-spreads-iterables", Show + "{{ m(*'xy') }}{{ m(*{'p': 1, 'q': 2}) }}{{ m(*nope) }}{{ m(*ps) }}", """{"ps": ["j", "s"]}""", "[x|y|C||{}][p|q|C||{}][||C||{}][j|s|C||{}]"),
        new("star-caller", "{% macro w(n) %}{{ caller(*['x', n]) }}|{{ caller(**{'q': 'k', 'p': 'v'}) }}{% endmacro %}{% call(p, q) w('y') %}{{ q }}{{ p }}{% endcall %}", "{}", "yx|kv"),
        new("star-filters", "{{ 'a-b' | replace(*['-', '+']) }} {{ [3, 1, 2] | sort(**{'reverse': true}) | join }} {{ [1, 2] | join(*[':']) }}", "{}", "a+b 321 1:2"),
        new("star-methods-and-globals", "{{ '{}:{}'.format(*['k', 'v']) }} {{ '{a}{b}'.format(**{'a': 1, 'b': 2}) }} {{ range(*[1, 7, 2]) | join(',') }} {{ dict(z=2, **{'k': 1}) }} {{ namespace(**{'a': 5}).a }}", "{}", "k:v 12 1,3,5 {'z': 2, 'k': 1} 5"),
        new("star-tests", "{{ 9 is divisibleby(*[3]) }} {{ 2 is in(*[[1, 2]]) }}", "{}", "True True"),

        // Jinja2 syntax no published template needed yet, closed while checking them
        new("syntax-crlf-line-ends", "{% for x in xs %}\r\n[{{ x }}]\r\n{% endfor %}\r\nend\r{{ 'q\r\nr' | tojson }}\r\n", """{"xs": ["a", "b"]}""", "[a]\n[b]\nend\n\"q\\nr\""),
        new("syntax-plus-keeps-newline", "{% if true +%}\nx{% endif %}\n{% if true %}\ny{% endif %}", "{}", "\nxy"),
        new("syntax-string-escapes", "{{ 'a\\x41\\101\\u0041\\U0001F600\\a\\v\\0\\q' | tojson(ensure_ascii=true) }}", "{}", "\"aAAA\\ud83d\\ude00\\u0007\\u000b\\u0000\\\\q\""),
        new("syntax-integer-literals", "{{ 0x1F }} {{ 0o17 }} {{ 0B101 }} {{ 1_000 }} {{ 1_0.5 }} {{ 1e3 }} {{ 0x_ff + 1 }}", "{}", "31 15 5 1000 10.5 1000.0 256"),
        new("syntax-chained-comparisons", "{{ 1 < 2 < 3 }} {{ 3 > 2 > 1 }} {{ 1 < 3 > 2 }} {{ 1 < 2 > 5 }} {{ 1 == 1 == 1 }} {{ 0 < x.n <= 10 }} {{ 'a' in 'abc' in 'xabcx' }}", """{"x": {"n": 5}}""", "True True True False True True True"),
        new("syntax-with", "{% set a = 'outer' %}{% with a = 1, b = a %}{{ a }}{{ b }}{% set c = 3 %}{% endwith %}[{{ a }}{{ c }}]{% with %}{% set q = 4 %}{{ q }}{% endwith %}[{{ q }}]", "{}", "1outer[outer]4[]"),
        new("syntax-tuple-targets", "{% for (a, b) in [(1, 2), (3, 4)] %}{{ a }}{{ b }}{% endfor %} {% for k, (x, y) in {'p': [5, 6]}.items() %}{{ k }}{{ x }}{{ y }}{% endfor %} {% set (m, n) = 'mn' %}{{ n }}{{ m }} {% with (s, t) = [8, 9] %}{{ t }}{{ s }}{% endwith %}", "{}", "1234 p56 nm 98"),
        new("runtime-loop-changed", "{% for x in [1, 1, 2, 2, 1] %}{{ 'y' if loop.changed(x) else 'n' }}{% endfor %} {% for m in ms %}{% if loop.changed(m.day, m.who) %}|{{ m.day }} {{ m.who }}:{% endif %}{{ m.text }}{% endfor %}", """{"ms": [{"day": 1, "who": "a", "text": "x"}, {"day": 1, "who": "a", "text": "y"}, {"day": 1, "who": "b", "text": "z"}]}""", "ynyny |1 a:xy|1 b:z"),
        new("runtime-repeat-either-side", "{{ 3 * 'ab' }} {{ 'ab' * 2 }} {{ 2 * [0] }} {{ true * 'x' }} {{ 'x' * -1 }}", "{}", "ababab abab [0, 0] x "),
        new("runtime-strings-by-code-point", "{{ s | length }} {{ s[1] }} {{ s[-1] }} {{ s[::-1] }} {{ s | reverse }} {{ s[1:4] }} {{ s | list | length }} {{ s | last }}", """{"s": "a😀b👍🏽"}""", "5 \uD83D\uDE00 \uD83C\uDFFD \uD83C\uDFFD\uD83D\uDC4Db\uD83D\uDE00a \uD83C\uDFFD\uD83D\uDC4Db\uD83D\uDE00a \uD83D\uDE00b\uD83D\uDC4D 5 \uD83C\uDFFD"),
        new("runtime-markup-plus-escapes", "{{ \"Use '\"|safe + t.name + \"' for '\"|safe + t.description + \"'\\n\"|safe + t | tojson() }}", """{"t": {"name": "get_weather", "description": "Weather & <temps> in \"°C\""}}""", "Use 'get_weather' for 'Weather &amp; &lt;temps&gt; in &#34;°C&#34;'\n{&#34;name&#34;: &#34;get_weather&#34;, &#34;description&#34;: &#34;Weather &amp; &lt;temps&gt; in \\&#34;°C\\&#34;&#34;}"),
        new("runtime-markup-elsewhere", "{{ 'a<' + ('b>' | safe) }}|{{ ('<i>' | safe) ~ '<b>' }}|{{ '<' | e + '>' }}|{{ ('x' | safe) is string }}|{{ ('<é>' | safe) | length }}|{{ [('a\"' | safe)] | tojson }}|{{ ('k' | safe) in {'k': 1} }}|{{ {'k': 2}[('k' | safe)] }}|{{ ('a' | safe) == 'a' }}|{{ ('<' | e) | e }}", "{}", "a&lt;b>|<i><b>|&lt;&gt;|True|3|[\"a\\\"\"]|True|2|True|&lt;"),
        new("runtime-float-repr", "{{ 1e16 }} {{ 1e15 }} {{ 2.5e-5 }} {{ 0.0001 }} {{ 1e22 }} {{ 123456789.125 }} {{ [1e16, 0.5] | tojson }}", "{}", "1e+16 1000000000000000.0 2.5e-05 0.0001 1e+22 123456789.125 [1e+16, 0.5]"),
        new("runtime-select-map-none", "{{ none | selectattr('type', 'equalto', 'x') | list | length }} {{ none | map(attribute='a') | list }} {{ '' | select | list }} {{ tools | rejectattr('a') | list }}", """{"tools": null}""", "0 [] [] []"),
        new("runtime-int-dict-keys", SeedStyle, """{"thinking_budget": 600}""", "256 1024 0,512,1024,16384 True False 0\n{1: 'c'} {\"1\": \"y\", \"2\": \"x\"} {\"1.5\": 1, \"true\": 2, \"k\": 3}"),
        new("runtime-stable-reverse-sort", "{{ xs | sort(attribute='k', reverse=true) | map(attribute='n') | join }} {{ {'b': 1, 'a': 1, 'c': 0} | dictsort(by='value', reverse=true) | map('first') | join }}", """{"xs": [{"k": 1, "n": "a"}, {"k": 1, "n": "b"}, {"k": 0, "n": "c"}, {"k": 2, "n": "d"}]}""", "dabc bac"),
    ];

    public static readonly IReadOnlyList<ErrorCase> Errors =
    [
        new("tojson-unknown-keyword", "{{ [1] | tojson(indnet=2) }}", "{}", "unexpected keyword argument 'indnet'"),
        new("tojson-bad-separators", "{{ [1] | tojson(separators=(',',)) }}", "{}", "separators must be a pair of strings"),
        new("tojson-too-many-arguments", "{{ [1] | tojson(false, 2, none, false, 5) }}", "{}", "at most 4 arguments"),
        new("tojson-twice", "{{ [1] | tojson(false, ensure_ascii=true) }}", "{}", "multiple values for argument 'ensure_ascii'"),
        new("star-twice", "{{ f(*a, *b) }}", "{}", "Only one *args"),
        new("star-after-double-star", "{{ f(**a, *b) }}", "{}", "*args unpacking must come before **kwargs"),
        new("positional-after-star", "{{ f(*a, b) }}", "{}", "Positional argument after *args"),
        new("keyword-after-double-star", "{{ f(**a, k=1) }}", "{}", "Keyword argument after **kwargs"),
        new("star-in-macro-signature", "{% macro m(*args) %}{% endmacro %}", "{}", "Macro parameters cannot start with '*'"),
        new("star-of-int", Show + "{{ m(*1) }}", "{}", "Value after * must be an iterable, not int"),
        new("double-star-of-list", Show + "{{ m(**[1]) }}", "{}", "Argument after ** must be a mapping, not list"),
        new("double-star-repeats-keyword", Show + "{{ m(a=1, **{'a': 2}) }}", "{}", "multiple values for keyword argument 'a'"),
        new("bad-hex-escape", "{{ 'ab\\x4' }}", "{}", "Truncated or invalid \\x escape"),
        new("unhashable-dict-key", "{{ {[1]: 2} }}", "{}", "unhashable type: 'list'"),
        new("sort-keys-mixed-types", "{{ {1: 'a', 'b': 2} | tojson(sort_keys=true) }}", "{}", "'<' not supported"),
        new("sort-mixed-types", "{{ [1, 'a'] | sort }}", "{}", "'<' not supported"),
        new("include-has-no-loader", "{% include 'other.jinja' %}", "{}", "needs other templates"),
        new("target-count-mismatch", "{% for a, (b, c) in [(1, (2, 3, 4))] %}{% endfor %}", "{}", "Cannot unpack 3 values into 2 names"),
    ];
}
