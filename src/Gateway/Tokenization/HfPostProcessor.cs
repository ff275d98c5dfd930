using System.Text.Json;

namespace Loom.Gateway.Tokenization;

/// <summary>tokenizer.json "post_processor", reduced to what add_special_tokens does to a single
/// sequence: ids to put before and after it (TemplateProcessing's "single", Bert/Roberta's
/// cls/sep). ByteLevel only adjusts offsets, so it adds nothing.</summary>
internal sealed class HfPostProcessor
{
    private readonly List<int> _prefix = [];
    private readonly List<int> _suffix = [];

    private HfPostProcessor()
    {
    }

    public static HfPostProcessor Parse(JsonElement e)
    {
        var p = new HfPostProcessor();
        if (e.ValueKind == JsonValueKind.Object)
        {
            p.Add(e);
        }
        return p;
    }

    public int[] Apply(List<int> ids)
    {
        var output = new int[_prefix.Count + ids.Count + _suffix.Count];
        _prefix.CopyTo(output, 0);
        ids.CopyTo(output, _prefix.Count);
        _suffix.CopyTo(output, _prefix.Count + ids.Count);
        return output;
    }

    private void Add(JsonElement e)
    {
        string type = e.GetProperty("type").GetString() ?? "";
        switch (type)
        {
            case "Sequence":
                foreach (var child in e.GetProperty("processors").EnumerateArray())
                {
                    Add(child);
                }
                break;
            case "ByteLevel":
                break;
            case "TemplateProcessing":
            {
                var special = e.GetProperty("special_tokens");
                bool afterSequence = false;
                foreach (var item in e.GetProperty("single").EnumerateArray())
                {
                    if (item.TryGetProperty("Sequence", out _))
                    {
                        afterSequence = true;
                        continue;
                    }
                    string name = item.GetProperty("SpecialToken").GetProperty("id").GetString() ?? "";
                    var target = afterSequence ? _suffix : _prefix;
                    foreach (var id in special.GetProperty(name).GetProperty("ids").EnumerateArray())
                    {
                        target.Add(id.GetInt32());
                    }
                }
                break;
            }
            case "BertProcessing":
            case "RobertaProcessing":
                // "cls": ["[CLS]", 101], "sep": ["[SEP]", 102]
                _prefix.Add(e.GetProperty("cls")[1].GetInt32());
                _suffix.Add(e.GetProperty("sep")[1].GetInt32());
                break;
            default:
                throw new NotSupportedException($"tokenizer.json post_processor '{type}' is not supported");
        }
    }
}
