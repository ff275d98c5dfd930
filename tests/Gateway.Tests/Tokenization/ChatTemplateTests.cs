using Loom.Gateway.Templates;
using Loom.Gateway.Tokenization;

namespace Loom.Gateway.Tests.Tokenization;

public sealed class ChatTemplateTests
{
    [Fact]
    public void ReadsStringTemplateAndTokenObjects()
    {
        const string config = """
            {"chat_template": "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}{{ eos_token }}",
             "bos_token": {"__type": "AddedToken", "content": "<s>"}, "eos_token": "</s>"}
            """;
        var t = ChatTemplate.FromTokenizerConfig(config)!;
        Assert.Equal("<s>", t.BosToken);
        Assert.Equal("<s>hi</s>", t.Render("""[{"role":"user","content":"hi"}]""", false));
    }

    [Fact]
    public void PicksDefaultAndToolUseFromTemplateList()
    {
        const string config = """
            {"chat_template": [{"name": "default", "template": "plain"}, {"name": "tool_use", "template": "tools={{ tools | length }}"}]}
            """;
        var t = ChatTemplate.FromTokenizerConfig(config)!;
        Assert.Equal("plain", t.Render("[]", true));
        Assert.Equal("tools=1", t.Render("[]", true, """[{"type":"function","function":{"name":"f"}}]"""));
    }

    [Fact]
    public void NoTemplateGivesNull() => Assert.Null(ChatTemplate.FromTokenizerConfig("""{"eos_token": "</s>"}"""));

    [Fact]
    public void PassesExtraKwargsAndNoneTools()
    {
        var t = new ChatTemplate("{{ 'T' if enable_thinking is false }}{{ 'N' if tools is none }}{{ add_generation_prompt }}");
        Assert.Equal("TNTrue", t.Render("[]", true, null, new Dictionary<string, object?> { ["enable_thinking"] = false }));
    }

    [Fact]
    public void Gpt2DemoTemplateRenders()
    {
        var t = new ChatTemplate(Gpt2TokenizerFiles.ChatTemplate);
        Assert.Equal("### system\nBe nice.\n\n### user\nHi\n\n### assistant\n",
            t.Render("""[{"role":"system","content":"Be nice."},{"role":"user","content":"Hi"}]""", true));
    }

    [Theory]
    [InlineData("{% if %}", "[]", "Cannot parse")]
    public void SyntaxErrorIsChatTemplateException(string template, string messages, string message)
    {
        var e = Assert.Throws<ChatTemplateException>(() => new ChatTemplate(template).Render(messages, true));
        Assert.Contains(message, e.Message);
    }

    [Theory]
    [InlineData("{{ raise_exception('Only user and assistant roles are supported!') }}", "[]", "Only user and assistant roles are supported!")]
    [InlineData("x", "{\"not\": \"an array\"}", "messages must be a JSON array")]
    [InlineData("x", "[", "messages is not valid JSON")]
    public void RenderErrorsAreChatTemplateExceptions(string template, string messages, string message)
    {
        var e = Assert.Throws<ChatTemplateException>(() => new ChatTemplate(template).Render(messages, true));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void ParsedOnceRendersConcurrently()
    {
        var t = new ChatTemplate("{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}");
        var results = Enumerable.Range(1, 64).AsParallel().Select(i =>
            t.Render("[" + string.Join(",", Enumerable.Repeat("""{"role":"user","content":"x"}""", i)) + "]", false)).ToList();
        Assert.Equal(Enumerable.Range(1, 64).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), results);
    }
}
