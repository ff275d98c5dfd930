// Shared by every kernel file (pasted in by the PTX build: NVRTC gets no include path).
// Header-free on purpose: NVRTC has no cuda_runtime.h, so bf16 is a raw unsigned short and
// INFINITY is spelled out.
#define LOOM_NEG_INF (__int_as_float(0xff800000))

__device__ __forceinline__ float bf16_to_f32(unsigned short h) { return __int_as_float(((unsigned int)h) << 16); }

// Round to nearest even, NaN kept quiet: what torch's .to(bfloat16) does.
__device__ __forceinline__ unsigned short f32_to_bf16(float f)
{
    unsigned int u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (unsigned short)(u >> 16);
}

__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum or max over a block of up to 1024 threads; every thread gets the result. `scratch` holds 32 floats.
template <bool IsMax>
__device__ __forceinline__ float block_reduce(float v, float* scratch)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = IsMax ? warp_max(v) : warp_sum(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    int warps = (blockDim.x + 31) >> 5;
    v = lane < warps ? scratch[lane] : (IsMax ? LOOM_NEG_INF : 0.f);
    return IsMax ? warp_max(v) : warp_sum(v);
}

__device__ __forceinline__ float block_sum(float v, float* scratch) { return block_reduce<false>(v, scratch); }
__device__ __forceinline__ float block_max(float v, float* scratch) { return block_reduce<true>(v, scratch); }
