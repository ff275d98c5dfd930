#include "common.cuh"

// Per-token kernels: activations are fp32 [tokens, features]; weights bf16; one block per row.

extern "C" __global__ void embedding_bf16(const unsigned short* __restrict__ table, const int* __restrict__ ids,
                                          float* __restrict__ out, int hidden)
{
    const unsigned short* row = table + (long long)ids[blockIdx.x] * hidden;
    float* o = out + (long long)blockIdx.x * hidden;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) o[i] = bf16_to_f32(row[i]);
}

// out = x / rms(x) * w (w fp32); out may alias x.
extern "C" __global__ void rms_norm(const float* __restrict__ x, const float* __restrict__ w, float* out, int n, float eps)
{
    __shared__ float scratch[32];
    const float* xr = x + (long long)blockIdx.x * n;
    float* o = out + (long long)blockIdx.x * n;
    float ss = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) ss += xr[i] * xr[i];
    float inv = rsqrtf(block_sum(ss, scratch) / n + eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x) o[i] = xr[i] * inv * w[i];
}

// residual += x; out = rms_norm(residual) * w (vLLM's fused_add_rms_norm); out may alias x.
extern "C" __global__ void fused_add_rms_norm(const float* x, float* __restrict__ residual, const float* __restrict__ w,
                                              float* out, int n, float eps)
{
    __shared__ float scratch[32];
    const float* xr = x + (long long)blockIdx.x * n;
    float* r = residual + (long long)blockIdx.x * n;
    float* o = out + (long long)blockIdx.x * n;
    float ss = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
    {
        float v = r[i] + xr[i];
        r[i] = v;
        ss += v * v;
    }
    float inv = rsqrtf(block_sum(ss, scratch) / n + eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x) o[i] = r[i] * inv * w[i];
}

// out[t, j] = silu(gate_up[t, j]) * gate_up[t, F + j]
extern "C" __global__ void silu_and_mul(const float* __restrict__ gate_up, float* __restrict__ out, int f)
{
    const float* g = gate_up + (long long)blockIdx.x * 2 * f;
    float* o = out + (long long)blockIdx.x * f;
    for (int j = threadIdx.x; j < f; j += blockDim.x)
    {
        float a = g[j];
        o[j] = a / (1.f + __expf(-a)) * g[f + j];
    }
}

// out = a + b over n elements (grid-stride); out may alias a or b.
extern "C" __global__ void add_f32(const float* a, const float* b, float* out, long long n)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) out[i] = a[i] + b[i];
}

// In-place HF rotate_half RoPE on x[t, heads * head_dim]: grid (tokens, heads), `half` frequencies.
extern "C" __global__ void rope_rotate_half(float* __restrict__ x, const int* __restrict__ positions, const float* __restrict__ inv_freq,
                                            int heads, int head_dim, int half, float attention_scaling)
{
    float* h = x + ((long long)blockIdx.x * heads + blockIdx.y) * head_dim;
    float pos = (float)positions[blockIdx.x];
    for (int i = threadIdx.x; i < half; i += blockDim.x)
    {
        float s, c;
        sincosf(pos * inv_freq[i], &s, &c);
        c *= attention_scaling;
        s *= attention_scaling;
        float a = h[i], b = h[i + half];
        h[i] = a * c - b * s;
        h[i + half] = b * c + a * s;
    }
}

// out[i] = x[rows[i]]: grid = output rows.
extern "C" __global__ void gather_rows(const float* __restrict__ x, const int* __restrict__ rows, float* __restrict__ out, int cols)
{
    const float* src = x + (long long)rows[blockIdx.x] * cols;
    float* o = out + (long long)blockIdx.x * cols;
    for (int j = threadIdx.x; j < cols; j += blockDim.x) o[j] = src[j];
}

// out[t, j] = src[t, offset + j]: grid = rows.
extern "C" __global__ void copy_columns(const float* __restrict__ src, int src_cols, int offset, float* __restrict__ out, int cols)
{
    const float* s = src + (long long)blockIdx.x * src_cols + offset;
    float* o = out + (long long)blockIdx.x * cols;
    for (int j = threadIdx.x; j < cols; j += blockDim.x) o[j] = s[j];
}

// out[i] = table[ids[i]] for an fp32 table (f32 checkpoints keep their embedding in fp32).
extern "C" __global__ void embedding_f32(const float* __restrict__ table, const int* __restrict__ ids, float* __restrict__ out, int hidden)
{
    const float* row = table + (long long)ids[blockIdx.x] * hidden;
    float* o = out + (long long)blockIdx.x * hidden;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) o[i] = row[i];
}

// fp32 activations to bf16 for the cuBLAS GEMM's inputs (grid-stride).
extern "C" __global__ void f32_to_bf16(const float* __restrict__ x, unsigned short* __restrict__ y, long long n)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) y[i] = f32_to_bf16(x[i]);
}

// out[r, j] += bias[j]: grid = rows.
extern "C" __global__ void add_bias(float* __restrict__ out, const float* __restrict__ bias, int cols)
{
    float* o = out + (long long)blockIdx.x * cols;
    for (int j = threadIdx.x; j < cols; j += blockDim.x) o[j] += bias[j];
}
