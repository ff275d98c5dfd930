// Loom.Tools: what builds and checks the runtime's inputs but is no part of serving. The model
// generator and the safetensors/GGUF writers, DirectRunner (a model without the engine, for oracle
// tests and benchmarks), NVRTC and the PTX build live here so that src/ holds only what a silo or
// gateway runs: the runtime reads model files and the committed PTX, it never writes them.
//   dotnet run -c Release --project tests/Tools -- model generate PRESET --out DIR [--dtype bf16] [--seed N] [--gguf FILE --gguf-type T]
//   dotnet run -c Release --project tests/Tools -- ptx build SRC_DIR [OUT_DIR]
return await Loom.Tools.Cli.ToolsCli.RunAsync(args);
