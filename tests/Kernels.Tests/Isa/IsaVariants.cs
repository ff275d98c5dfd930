using Loom.Kernels.Cpu.Isa;

// The kernel parity suites again on every implementation this process can run, whatever the
// machine picks by itself: an AVX-512 machine checks avx512, avx2, portable and scalar here;
// an AVX2 one avx2, portable and scalar; an ARM64 one neon, portable and scalar.
namespace Loom.Kernels.Tests.Isa;

public sealed class Avx512LinearTests : LinearTests { protected override CpuIsa? Isa => CpuIsa.Avx512; }
public sealed class Avx512AttentionTests : AttentionTests { protected override CpuIsa? Isa => CpuIsa.Avx512; }
public sealed class Avx512ElementwiseTests : ElementwiseTests { protected override CpuIsa? Isa => CpuIsa.Avx512; }

public sealed class Avx2LinearTests : LinearTests { protected override CpuIsa? Isa => CpuIsa.Avx2; }
public sealed class Avx2AttentionTests : AttentionTests { protected override CpuIsa? Isa => CpuIsa.Avx2; }
public sealed class Avx2ElementwiseTests : ElementwiseTests { protected override CpuIsa? Isa => CpuIsa.Avx2; }

public sealed class NeonLinearTests : LinearTests { protected override CpuIsa? Isa => CpuIsa.Neon; }
public sealed class NeonAttentionTests : AttentionTests { protected override CpuIsa? Isa => CpuIsa.Neon; }
public sealed class NeonElementwiseTests : ElementwiseTests { protected override CpuIsa? Isa => CpuIsa.Neon; }

public sealed class PortableLinearTests : LinearTests { protected override CpuIsa? Isa => CpuIsa.Portable; }
public sealed class PortableAttentionTests : AttentionTests { protected override CpuIsa? Isa => CpuIsa.Portable; }
public sealed class PortableElementwiseTests : ElementwiseTests { protected override CpuIsa? Isa => CpuIsa.Portable; }

public sealed class ScalarLinearTests : LinearTests { protected override CpuIsa? Isa => CpuIsa.Scalar; }
public sealed class ScalarAttentionTests : AttentionTests { protected override CpuIsa? Isa => CpuIsa.Scalar; }
public sealed class ScalarElementwiseTests : ElementwiseTests { protected override CpuIsa? Isa => CpuIsa.Scalar; }

public sealed class Avx512QuantTests : QuantTests { protected override CpuIsa? Isa => CpuIsa.Avx512; }
public sealed class Avx2QuantTests : QuantTests { protected override CpuIsa? Isa => CpuIsa.Avx2; }
public sealed class NeonQuantTests : QuantTests { protected override CpuIsa? Isa => CpuIsa.Neon; }
public sealed class PortableQuantTests : QuantTests { protected override CpuIsa? Isa => CpuIsa.Portable; }
public sealed class ScalarQuantTests : QuantTests { protected override CpuIsa? Isa => CpuIsa.Scalar; }
