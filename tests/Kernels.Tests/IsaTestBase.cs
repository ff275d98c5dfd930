using Loom.Kernels.Cpu;
using Loom.Kernels.Cpu.Isa;

namespace Loom.Kernels.Tests;

/// <summary>
/// Kernel test classes build their backends here, so one set of cases runs on the process's own
/// choice (the base classes) and again on every forced ISA (the subclasses in <c>Isa/</c>, which
/// skip with the reason when this CPU or the runtime's knobs rule an ISA out).
/// </summary>
public abstract class IsaTestBase
{
    /// <summary>Null: the ISA the backend picks for itself.</summary>
    protected virtual CpuIsa? Isa => null;

    protected CpuBackend Backend(int threads = 0)
    {
        if (Isa is { } isa) Skip.IfNot(CpuIsaSelector.IsSupported(isa, out var why), $"{CpuIsaSelector.Name(isa)}: {why}");
        var backend = new CpuBackend(threads, Isa);
        if (Isa is { } forced) Assert.Equal(forced, backend.Isa);
        return backend;
    }
}
