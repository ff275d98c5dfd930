namespace Loom.Gateway.Tests.Tokenization;

/// <summary>Templates written for Loom's tests (no third-party licence) that exercise the Jinja
/// subset broadly. They avoid printing booleans, None and lists of strings directly, and the
/// length of text past the BMP (JS counts UTF-16 units, Python code points), where
/// @huggingface/jinja and Python Jinja differ; Loom follows Python there. Filters that give
/// generators in Python (items, map) go through list before length, as Python needs.</summary>
internal static class ChatTemplateFeatureTemplates
{
    private const string Loops = """
        {%- macro text(m) -%}
        {{ m.content if m.content is string else (m.content | map(attribute='text') | join('') if m.content is iterable else '') }}
        {%- endmacro -%}
        {%- macro render(m, prefix='> ') -%}{{ prefix }}{{ m.role | upper }}: {{ text(m) }}{%- endmacro -%}
        {%- set ns = namespace(count=0, last_user='') -%}
        {%- for m in messages if m.role != 'tool' -%}
        {{ loop.index }}/{{ loop.length }} r{{ loop.revindex0 }}{% if loop.first %} first{% endif %}{% if loop.last %} last{% endif %} {{ render(m) }}
        {% set ns.count = ns.count + 1 %}
        {%- else -%}
        no messages
        {% endfor -%}
        count={{ ns.count }} users={{ messages | selectattr('role', 'equalto', 'user') | list | length }} others={{ messages | rejectattr('role', 'eq', 'user') | list | length }}
        {%- for m in messages[::-1] %}{% if m.role == 'user' %}{% set ns.last_user = text(m) | trim %}{% break %}{% endif %}{% endfor %}
        last user: {{ ns.last_user }}
        {% if tools is not none and tools %}
            {% for t in tools %}
        {{ t.function.name }}={{ t.function.parameters.required | join(',') }};{{ t | tojson }}
        {{ t.function.parameters | tojson(indent=2) }}
            {% endfor %}
        {% endif %}
        {%- for m in messages %}{% if m.tool_calls is defined %}{% for c in m.tool_calls %}
        call {{ loop.index0 }} {{ c.function.name }} {{ c.function.arguments if c.function.arguments is string else c.function.arguments | tojson }}
        {%- endfor %}{% endif %}{% endfor %}
        {% if add_generation_prompt %}[{{ bos_token ~ 'gen' ~ eos_token }}]{% endif %}
        """;

    private const string Expressions = """
        {%- set s = "  Hello, World  " -%}
        {{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}|{{ s | trim | lower }}|{{ s.split(',') | length }}|{{ 'a,b,,c'.split(',') | join('+') }}
        {{ 'abc'[::-1] }} {{ [1,2,3,4,5][1:4] }} {{ [1,2,3][-1] }} {{ 7 // 2 }} {{ 7 % 3 }} {{ 2 ** 10 }} {{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 7 / 2 }}
        {{ 'yes' if 3 in [1,2,3] else 'no' }} {{ 'in' if 'b' in 'abc' else 'out' }} {{ 'ok' if 'z' not in 'abc' }} {{ 'k' if 'a' in {'a': 1} }}
        {{ 'T' if (1 < 2 and 2 <= 2 and 3 > 2 and 3 >= 3 and 1 != 2 and not 1 == 2) else 'F' }} {{ 'T' if none is none and x is undefined and s is string and 3 is number else 'F' }}
        {%- set d = {'b': 2, 'a': 1, 'c': {'x': [1, 2]}} %}
        {% for k, v in d.items() %}{{ k }}={{ v | tojson }};{% endfor %} {% for k in d %}{{ k }}{% endfor %} {{ d.get('a') }} {{ d.get('zz', 'dflt') }} {{ d['c']['x'][1] }} {{ d.c.x | length }}
        {% for k, v in d | dictsort %}{{ k }}{% endfor %} {{ d | items | list | length }} {{ d.keys() | list | length }}
        {{ undefined_thing | default('fallback') }} {{ '' | default('empty', true) }} {{ [3, 1, 2] | first }} {{ [3, 1, 2] | last }} {{ 'hello world' | title }} {{ 'hello' | capitalize }}
        {{ 'a-b-c' | replace('-', '+') }} {{ '42' | int + 1 }} {{ 'x' ~ 5 ~ 'y' }} {{ 'a' + 'b' }}
        {{ 'T' if s.startswith('  He') }}{{ 'T' if s.endswith('x') else 'F' }} {{ 'A' if 'abc'.startswith(('x', 'a')) }} {{ range(3) | list | length }} {{ range(1, 10, 3) | join(',') }}
        {% set block %}inside {{ s | trim }}{% endset %}[{{ block }}]
        {% filter upper %}shout {{ 'this' }}{% endfilter %}
        {% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}bold{% endcall %}
        {% for i in range(5) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 4 %}{% break %}{% endif %}{{ i }}{% endfor %}
        {%- for m in messages %}
        {{ loop.index0 }}:{{ m.role[0] | upper }}{{ '!' if loop.previtem is defined and loop.previtem.role == m.role }}
        {%- endfor %}
        """;

    private const string Whitespace = """
        {# a comment that trims #}
        <start>
          {% for m in messages %}
            {{ m.role }}
            {%- if m.content is string %} {{ 'long' if m.content | length > 8 else 'short' }}{% endif %}

          {% endfor %}
        {{- ' tight ' -}}
        <end>   {{ 'x' }}   
        """;

    public static readonly IReadOnlyList<(string Name, string Source)> All =
    [
        ("loops", Loops),
        ("expressions", Expressions),
        ("whitespace", Whitespace),
    ];
}
