#include "common.cuh"

// The paged KV pool on the GPU: per layer a K and a V buffer of bf16
// [num_blocks][kv_heads][block_size][head_dim]; a slot is block * block_size + offset.

// k/v: fp32 [tokens, kv_heads * head_dim]; a negative slot (padding) is skipped. grid = tokens.
extern "C" __global__ void reshape_and_cache(const float* __restrict__ k, const float* __restrict__ v,
                                             unsigned short* __restrict__ k_cache, unsigned short* __restrict__ v_cache,
                                             const int* __restrict__ slot_mapping, int kv_heads, int head_dim, int block_size)
{
    int slot = slot_mapping[blockIdx.x];
    if (slot < 0) return;
    int block = slot / block_size, offset = slot % block_size;
    int width = kv_heads * head_dim;
    const float* ks = k + (long long)blockIdx.x * width;
    const float* vs = v + (long long)blockIdx.x * width;
    for (int i = threadIdx.x; i < width; i += blockDim.x)
    {
        int h = i / head_dim, x = i % head_dim;
        long long dst = (((long long)block * kv_heads + h) * block_size + offset) * head_dim + x;
        k_cache[dst] = f32_to_bf16(ks[i]);
        v_cache[dst] = f32_to_bf16(vs[i]);
    }
}
