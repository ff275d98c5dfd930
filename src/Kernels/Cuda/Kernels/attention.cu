#include "common.cuh"

// Paged attention over the bf16 pool (see kv_cache.cu). q/out: fp32 [tokens, heads * head_dim].
// Sequence s owns query tokens [query_start[s], query_start[s+1]); after this step its KV holds
// seq_lens[s] tokens, so query i of n sits at position seq_lens[s] - n + i and attends to
// positions 0..that (causal). Blocks come from block_tables[s * max_blocks + j].

#define PARTITION 512

// Decode (one query token per sequence), split over the context (vLLM's paged_attention_v2):
// grid (heads, seqs, partitions), 128 threads = 4 warps. Each partition writes its max, its
// exp-sum and its unnormalised output; paged_attention_reduce combines them. With one
// partition the output is written directly. Shared memory: head_dim + PARTITION floats.
extern "C" __global__ void paged_attention_decode(
    const float* __restrict__ q, const unsigned short* __restrict__ k_cache, const unsigned short* __restrict__ v_cache,
    const int* __restrict__ query_start, const int* __restrict__ seq_lens, const int* __restrict__ block_tables, int max_blocks,
    int heads, int kv_heads, int head_dim, int block_size, float scale,
    float* __restrict__ out, float* __restrict__ part_max, float* __restrict__ part_sum, float* __restrict__ part_out, int partitions)
{
    extern __shared__ float smem[];
    __shared__ float scratch[32];
    float* qs = smem;
    float* scores = smem + head_dim;
    int head = blockIdx.x, seq = blockIdx.y, part = blockIdx.z;
    int kvh = head / (heads / kv_heads);
    int len = seq_lens[seq];
    int start = part * PARTITION, end = min(len, start + PARTITION);
    int token = query_start[seq];
    const float* qrow = q + ((long long)token * heads + head) * head_dim;
    for (int x = threadIdx.x; x < head_dim; x += blockDim.x) qs[x] = qrow[x] * scale;
    __syncthreads();

    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    const int* table = block_tables + (long long)seq * max_blocks;
    float local_max = LOOM_NEG_INF;
    for (int p = start + warp; p < end; p += warps)
    {
        const unsigned short* kp = k_cache + (((long long)table[p / block_size] * kv_heads + kvh) * block_size + p % block_size) * head_dim;
        float dot = 0.f;
        for (int x = lane; x < head_dim; x += 32) dot += qs[x] * bf16_to_f32(kp[x]);
        dot = warp_sum(dot);
        if (lane == 0) scores[p - start] = dot;
        local_max = fmaxf(local_max, dot);
    }
    __syncthreads();
    // Block max: every lane of a warp holds its warp's max after the shuffle reduction.
    local_max = warp_max(local_max);
    if (lane == 0) scratch[warp] = local_max;
    __syncthreads();
    float m = LOOM_NEG_INF;
    for (int w = 0; w < warps; w++) m = fmaxf(m, scratch[w]);
    __syncthreads();

    float sum = 0.f;
    for (int i = threadIdx.x; i < end - start; i += blockDim.x)
    {
        float e = __expf(scores[i] - m);
        scores[i] = e;
        sum += e;
    }
    sum = block_sum(sum, scratch);
    __syncthreads();

    for (int x = threadIdx.x; x < head_dim; x += blockDim.x)
    {
        float acc = 0.f;
        for (int p = start; p < end; p++)
        {
            const unsigned short* vp = v_cache + (((long long)table[p / block_size] * kv_heads + kvh) * block_size + p % block_size) * head_dim;
            acc += scores[p - start] * bf16_to_f32(vp[x]);
        }
        if (partitions == 1) out[((long long)token * heads + head) * head_dim + x] = acc / sum;
        else part_out[(((long long)seq * heads + head) * partitions + part) * head_dim + x] = acc;
    }
    if (partitions > 1 && threadIdx.x == 0)
    {
        long long at = ((long long)seq * heads + head) * partitions + part;
        part_max[at] = end > start ? m : LOOM_NEG_INF;
        part_sum[at] = end > start ? sum : 0.f;
    }
}

// Combines the partitions of paged_attention_decode: grid (heads, seqs), threads over head_dim.
extern "C" __global__ void paged_attention_reduce(
    const float* __restrict__ part_max, const float* __restrict__ part_sum, const float* __restrict__ part_out,
    const int* __restrict__ query_start, const int* __restrict__ seq_lens, int heads, int head_dim, int partitions, float* __restrict__ out)
{
    int head = blockIdx.x, seq = blockIdx.y;
    int used = (seq_lens[seq] + PARTITION - 1) / PARTITION;
    long long base = ((long long)seq * heads + head) * partitions;
    float m = LOOM_NEG_INF;
    for (int p = 0; p < used; p++) m = fmaxf(m, part_max[base + p]);
    float total = 0.f;
    for (int p = 0; p < used; p++) total += part_sum[base + p] * __expf(part_max[base + p] - m);
    long long token = query_start[seq];
    for (int x = threadIdx.x; x < head_dim; x += blockDim.x)
    {
        float acc = 0.f;
        for (int p = 0; p < used; p++) acc += part_out[(base + p) * head_dim + x] * __expf(part_max[base + p] - m);
        out[(token * heads + head) * head_dim + x] = acc / total;
    }
}

// Prefill chunks (any query length, after any cached context), flash-style: one warp per
// (query token, head) keeps a running max, sum and output (lanes split head_dim, up to 256)
// and streams the causal keys through the block table once. grid (tokens, heads), 32 threads:
// tokens on x, whose limit is 2^31 - 1; y and z stop at 65,535 and a step may carry more tokens.
extern "C" __global__ void paged_attention_prefill(
    const float* __restrict__ q, const unsigned short* __restrict__ k_cache, const unsigned short* __restrict__ v_cache,
    const int* __restrict__ query_start, int num_seqs, const int* __restrict__ seq_lens, const int* __restrict__ block_tables, int max_blocks,
    int heads, int kv_heads, int head_dim, int block_size, float scale, float* __restrict__ out)
{
    int token = blockIdx.x, head = blockIdx.y, lane = threadIdx.x;
    int lo = 0, hi = num_seqs - 1; // the sequence that owns this token: last s with query_start[s] <= token
    while (lo < hi)
    {
        int mid = (lo + hi + 1) >> 1;
        if (query_start[mid] <= token) lo = mid; else hi = mid - 1;
    }
    int seq = lo;
    int qlen = query_start[seq + 1] - query_start[seq];
    int ctx = seq_lens[seq] - qlen + (token - query_start[seq]) + 1;
    int kvh = head / (heads / kv_heads);
    const int* table = block_tables + (long long)seq * max_blocks;
    const float* qrow = q + ((long long)token * heads + head) * head_dim;
    float qv[8], acc[8];
    int per = (head_dim + 31) / 32;
    for (int j = 0; j < 8; j++)
    {
        int x = lane + 32 * j;
        qv[j] = j < per && x < head_dim ? qrow[x] * scale : 0.f;
        acc[j] = 0.f;
    }
    float m = LOOM_NEG_INF, l = 0.f;
    for (int p = 0; p < ctx; p++)
    {
        long long at = (((long long)table[p / block_size] * kv_heads + kvh) * block_size + p % block_size) * head_dim;
        float dot = 0.f;
        for (int j = 0; j < per; j++)
        {
            int x = lane + 32 * j;
            if (x < head_dim) dot += qv[j] * bf16_to_f32(k_cache[at + x]);
        }
        dot = warp_sum(dot);
        float m_new = fmaxf(m, dot);
        float alpha = __expf(m - m_new), w = __expf(dot - m_new);
        l = l * alpha + w;
        for (int j = 0; j < per; j++)
        {
            int x = lane + 32 * j;
            if (x < head_dim) acc[j] = acc[j] * alpha + w * bf16_to_f32(v_cache[at + x]);
        }
        m = m_new;
    }
    float* orow = out + ((long long)token * heads + head) * head_dim;
    for (int j = 0; j < per; j++)
    {
        int x = lane + 32 * j;
        if (x < head_dim) orow[x] = acc[j] / l;
    }
}
