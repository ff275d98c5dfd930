using Loom.Benchmarks;

// dotnet run -c Release --project tests/Benchmarks -- SUITE [options]
var suites = new Dictionary<string, Func<BenchArgs, int>>
{
    ["kernels"] = KernelsSuite.Run,
    ["engine"] = EngineSuite.Run,
    ["profile"] = ProfileSuite.Run,
    ["cluster"] = ClusterSuite.Run,
    ["serve"] = ServeSuite.Run,
    ["chaos"] = ChaosSuite.Run,
    ["structured"] = StructuredSuite.Run,
};
if (args.Length == 0 || !suites.TryGetValue(args[0], out var suite))
{
    Console.Error.WriteLine($"usage: Loom.Benchmarks SUITE [--json FILE] ...   suites: {string.Join(", ", suites.Keys)}");
    return 2;
}
return suite(BenchArgs.Parse(args[1..]));
