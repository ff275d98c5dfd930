using System.Reflection;
using Loom.Silo.Configuration;
using Loom.Silo.Engine;
using Microsoft.Extensions.Configuration;

namespace Loom.Silo.Tests.Configuration;

/// <summary>Configuration binds once: the engine and gateway sections land on the records the engine and the API read.</summary>
public sealed class LoomConfigurationTests
{
    private static LoomOptions Bind(params (string Key, string Value)[] pairs) => LoomConfiguration.Bind(
        new ConfigurationBuilder().AddInMemoryCollection(pairs.Select(p => new KeyValuePair<string, string?>(p.Key, p.Value))).Build());

    [Fact]
    public void EngineKeysBindOntoTheEnginesOwnOptions()
    {
        var o = Bind(("engine:block_size", "32"), ("engine:max_num_seqs", "8"), ("engine:max_num_batched_tokens", "1024"),
            ("engine:max_model_len", "4096"), ("engine:max_waiting", "5"), ("engine:kv_cache_bytes", "1048576"),
            ("engine:gpu_memory_utilization", "0.5"), ("engine:num_blocks", "77"), ("engine:tensor_parallel_size", "2"),
            ("engine:threads", "3"), ("engine:cpu_isa", "portable"), ("engine:backend", "simulated"),
            ("engine:kv_cache_dtype", "f32"), ("engine:enable_prefix_caching", "false"), ("engine:sampling", "host"),
            ("engine:max_consecutive_step_failures", "9"), ("engine:structured_output_cache_bytes", "4194304"));
        Assert.Equal(new EngineOptions
        {
            BlockSize = 32, MaxNumSeqs = 8, MaxNumBatchedTokens = 1024, MaxModelLen = 4096, MaxWaiting = 5, KvCacheBytes = 1048576,
            GpuMemoryUtilization = 0.5, NumBlocks = 77, TensorParallelSize = 2, Threads = 3, CpuIsa = "portable", Backend = "simulated",
            KvCacheDType = "f32", EnablePrefixCaching = false, Sampling = "host", MaxConsecutiveStepFailures = 9,
            StructuredOutputCacheBytes = 4194304,
        }, o.Engine);
    }

    [Fact]
    public void GatewayKeysBindOntoTheApisOwnOptions()
    {
        var o = Bind(("gateway:host", "127.0.0.1"), ("gateway:http_port", "9000"), ("gateway:grpc_port", "0"), ("gateway:api_keys:0", "k1"),
            ("gateway:max_body_bytes", "4096"), ("gateway:first_token_timeout_s", "7.5"), ("gateway:max_concurrent_requests", "3"),
            ("gateway:max_choices_per_request", "4"), ("gateway:max_stop_strings", "2"), ("gateway:max_stop_string_length", "10"),
            ("gateway:max_stop_token_ids", "6"), ("gateway:max_logit_bias", "8"));
        var g = o.Gateway;
        Assert.Equal(("127.0.0.1", 9000, 0, "k1", 4096L, 7.5, 3), (g.Host, g.HttpPort, g.GrpcPort, Assert.Single(g.ApiKeys), g.MaxBodyBytes, g.FirstTokenTimeoutSeconds, g.MaxConcurrentRequests));
        Assert.Equal((4, 2, 10, 6, 8), (g.MaxChoicesPerRequest, g.MaxStopStrings, g.MaxStopStringLength, g.MaxStopTokenIds, g.MaxLogitBias));
        Assert.Null(g.ServedModelName);
    }

    [Theory]
    [InlineData("engine:blocksize", "engine.blocksize")]
    [InlineData("gateway:served_model_name", "gateway.served_model_name")]
    [InlineData("gateway:ServedModelName", "gateway.servedmodelname")]
    public void UnknownKeysAreRefusedByName(string key, string named)
    {
        var e = Assert.Throws<LoomConfigException>(() => Bind((key, "x")));
        Assert.Equal(named, e.Key);
        Assert.Contains("unknown setting", e.Message);
    }

    [Theory]
    [InlineData("engine:cpu_isa", "sse2", "engine.cpu_isa")]
    [InlineData("engine:num_blocks", "0", "engine.num_blocks")]
    [InlineData("engine:sampling", "gpu", "engine.sampling")]
    [InlineData("engine:structured_output_cache_bytes", "0", "engine.structured_output_cache_bytes")]
    [InlineData("gateway:max_stop_string_length", "0", "gateway.max_stop_string_length")]
    [InlineData("gateway:host", "not a host", "gateway.host")]
    [InlineData("engine:block_size", "many", "engine.block_size")]
    [InlineData("model:tool_call_parser", "pythonic", "model.tool_call_parser")]
    public void BadValuesNameTheirDottedKey(string key, string value, string named)
    {
        var e = Assert.Throws<LoomConfigException>(() => Bind((key, value)));
        Assert.Equal(named, e.Key);
    }

    [Fact]
    public void EverySettingOfTheBoundRecordsHasASnakeCaseKey()
    {
        // A property without a key would be bound under its C# name, a spelling the YAML and chart never use.
        foreach (var type in new[] { typeof(EngineOptions), typeof(LoomGatewayOptions) })
            foreach (var p in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite && p.Name is not (nameof(LoomGatewayOptions.ServedModelName) or nameof(LoomGatewayOptions.ToolCallParser))))
            {
                var key = p.GetCustomAttribute<ConfigurationKeyNameAttribute>()?.Name;
                Assert.True(key is not null && key == key.ToLowerInvariant() && !key.Contains(' '), $"{type.Name}.{p.Name} has no snake_case key");
            }
    }
}
