Console.Error.WriteLine("usage: Loom.Benchmarks SUITE [--json FILE]  (suites: kernels)");
return 2;
