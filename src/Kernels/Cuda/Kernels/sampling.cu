#include "common.cuh"

// Sampling on the GPU: only the chosen ids (and their logprobs) cross to the host, never the
// logits. One block of 1024 threads per sample slot; logits fp32 [rows, vocab]. The algorithm is
// SamplingBatch's (C#); TokenSampler is the host implementation of the same steps.

#define SAMPLE_THREADS 1024

__device__ __forceinline__ void block_argmax(float& v, int& i, float* sv, int* si)
{
    sv[threadIdx.x] = v;
    si[threadIdx.x] = i;
    __syncthreads();
    for (int s = blockDim.x >> 1; s > 0; s >>= 1)
    {
        if (threadIdx.x < s)
        {
            float ov = sv[threadIdx.x + s];
            int oi = si[threadIdx.x + s];
            // Ties go to the lower id, as torch.argmax does.
            if (ov > sv[threadIdx.x] || (ov == sv[threadIdx.x] && oi < si[threadIdx.x])) { sv[threadIdx.x] = ov; si[threadIdx.x] = oi; }
        }
        __syncthreads();
    }
    v = sv[0];
    i = si[0];
    __syncthreads();
}

// Max and log-sum-exp of one raw row (every thread gets both).
__device__ __forceinline__ void row_lse(const float* __restrict__ row, int vocab, float* scratch, float& max, float& lse)
{
    float m = LOOM_NEG_INF;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) m = fmaxf(m, row[j]);
    m = block_max(m, scratch);
    float z = 0.f;
    if (m != LOOM_NEG_INF)
        for (int j = threadIdx.x; j < vocab; j += blockDim.x) z += __expf(row[j] - m);
    z = block_sum(z, scratch);
    max = m;
    lse = m == LOOM_NEG_INF ? m : m + __logf(z);
}

// Penalties and min_tokens masks, sparse: one thread per (slot, token) entry, each pair at most
// once. l = l > 0 ? l / div : l * div, then l -= sub (sub = +inf masks the token).
extern "C" __global__ void logits_adjust(float* __restrict__ adjusted, int vocab, int n, const int* __restrict__ slot, const int* __restrict__ token,
                                         const float* __restrict__ divide, const float* __restrict__ subtract)
{
    int e = blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= n || token[e] < 0 || token[e] >= vocab) return;
    float* l = adjusted + (long long)slot[e] * vocab + token[e];
    float v = *l, d = divide[e];
    v = v > 0.f ? v / d : v * d;
    *l = v - subtract[e];
}

// Structured outputs: a slot with a mask (offsets[slot] >= 0) has every token whose bit is clear
// in its words set to -inf before the draw. One thread per (slot, token).
extern "C" __global__ void apply_mask(float* __restrict__ adjusted, int vocab, const unsigned int* __restrict__ words, const int* __restrict__ offsets,
                                      int words_per_slot)
{
    int slot = blockIdx.y;
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    int off = offsets[slot];
    if (t >= vocab || off < 0) return;
    if ((words[off + (t >> 5)] & (1u << (t & 31))) == 0) adjusted[(long long)slot * vocab + t] = LOOM_NEG_INF;
}

// Weights w = exp((a - max) / t) of one row (the most likely token has w = 1).
__device__ __forceinline__ float weight(const float* __restrict__ row, int j, float best, float inv_t)
{
    return __expf((row[j] - best) * inv_t);
}

// The largest threshold x in [lo, 1] (compared as float bit patterns, which order non-negative
// floats) such that the tokens with w >= x number at least k (by_mass = 0) or hold at least need
// of the mass (by_mass = 1). Exact: the answer is always one of the row's weights.
__device__ float largest_threshold(const float* __restrict__ row, int vocab, float best, float inv_t, float lo_value, int by_mass,
                                   float need, float* scratch)
{
    int lo = __float_as_int(lo_value), hi = __float_as_int(1.f);
    while (lo < hi)
    {
        int mid = lo + (hi - lo + 1) / 2;
        float m = __int_as_float(mid), acc = 0.f;
        for (int j = threadIdx.x; j < vocab; j += blockDim.x)
        {
            float w = weight(row, j, best, inv_t);
            if (w >= m) acc += by_mass ? w : 1.f;
        }
        acc = block_sum(acc, scratch);
        if (acc >= need) lo = mid; else hi = mid - 1;
    }
    return __int_as_float(lo);
}

// One slot per block: greedy below the temperature epsilon, otherwise (SamplingBatch's steps)
// w = exp((a - max) / t); tau = min_p; top_k raises tau to the k-th largest w when more than k are
// kept; top_p raises it to the largest w whose kept set still holds top_p of the mass; the draw
// walks the kept tokens {w >= tau} in id order to u * (kept mass). top_k <= 0 and top_p >= 1
// disable those cuts. The logprob (the chosen id's under the raw row's softmax, raw_row[slot]
// picks the row) is computed only when want_logprob[slot] is set.
extern "C" __global__ void sample_rows(const float* __restrict__ adjusted, const float* __restrict__ raw, const int* __restrict__ raw_row, int vocab,
                                       const float* __restrict__ temperature, const int* __restrict__ top_k, const float* __restrict__ top_p,
                                       const float* __restrict__ min_p, const float* __restrict__ uniform, const unsigned char* __restrict__ want_logprob,
                                       int* __restrict__ out_ids, float* __restrict__ out_logprobs)
{
    __shared__ float sv[SAMPLE_THREADS];
    __shared__ int si[SAMPLE_THREADS];
    __shared__ float scratch[32];
    __shared__ float chunk_mass[SAMPLE_THREADS];
    int r = blockIdx.x;
    const float* row = adjusted + (long long)r * vocab;
    const float* rrow = raw + (long long)raw_row[r] * vocab;
    float best = LOOM_NEG_INF;
    int id = 0x7fffffff;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x)
        if (row[j] > best) { best = row[j]; id = j; }
    block_argmax(best, id, sv, si);
    if (id == 0x7fffffff) id = 0; // everything masked: token 0, as the host sampler does

    int pick = id;
    if (temperature[r] >= 1e-5f && best != LOOM_NEG_INF)
    {
        float inv_t = 1.f / temperature[r];
        float tau = min_p[r] > 0.f ? min_p[r] : 0.f;
        int k = top_k[r];
        if (k > 0 && k < vocab)
        {
            float count = 0.f;
            for (int j = threadIdx.x; j < vocab; j += blockDim.x)
                if (weight(row, j, best, inv_t) >= tau) count += 1.f;
            if (block_sum(count, scratch) > (float)k) tau = largest_threshold(row, vocab, best, inv_t, tau, 0, (float)k, scratch);
        }
        float pp = top_p[r];
        if (pp < 1.f)
        {
            float base = 0.f;
            for (int j = threadIdx.x; j < vocab; j += blockDim.x)
            {
                float w = weight(row, j, best, inv_t);
                if (w >= tau) base += w;
            }
            float need = pp * block_sum(base, scratch);
            tau = largest_threshold(row, vocab, best, inv_t, tau, 1, need, scratch);
        }

        // Kept mass per thread over a contiguous chunk, then a serial prefix over the chunks.
        int chunk = (vocab + blockDim.x - 1) / blockDim.x;
        int from = threadIdx.x * chunk, to = min(vocab, from + chunk);
        float mine = 0.f;
        for (int j = from; j < to; j++)
        {
            float w = weight(row, j, best, inv_t);
            if (w >= tau) mine += w;
        }
        chunk_mass[threadIdx.x] = mine;
        __syncthreads();
        if (threadIdx.x == 0)
        {
            float total = 0.f;
            for (int t = 0; t < blockDim.x; t++) total += chunk_mass[t];
            float target = uniform[r] * total, run = 0.f;
            int last = id;
            bool found = false;
            for (int t = 0; t < blockDim.x && !found; t++)
            {
                if (chunk_mass[t] <= 0.f) continue;
                if (run + chunk_mass[t] > target || t == blockDim.x - 1)
                {
                    int a = t * chunk, b = min(vocab, a + chunk);
                    for (int j = a; j < b; j++)
                    {
                        float w = weight(row, j, best, inv_t);
                        if (w < tau) continue;
                        run += w;
                        last = j;
                        if (run > target) { found = true; break; }
                    }
                    // Rounding between the chunk sums and this walk: the chunk's last kept id.
                    found = true;
                }
                else run += chunk_mass[t];
            }
            pick = last;
        }
    }
    float logprob = 0.f;
    if (want_logprob[r])
    {
        float raw_max, raw_lse;
        row_lse(rrow, vocab, scratch, raw_max, raw_lse);
        logprob = raw_lse;
    }
    if (threadIdx.x == 0)
    {
        out_ids[r] = pick;
        out_logprobs[r] = want_logprob[r] ? rrow[pick] - logprob : 0.f;
    }
}

// The n most likely ids of each slot's raw row, most likely first (ties: lower id), as logprobs:
// n rounds of a block argmax below the previous pick in (value desc, id asc) order.
extern "C" __global__ void top_logprobs(const float* __restrict__ raw, const int* __restrict__ raw_row, int vocab, int n,
                                        int* __restrict__ out_ids, float* __restrict__ out_values)
{
    __shared__ float sv[SAMPLE_THREADS];
    __shared__ int si[SAMPLE_THREADS];
    __shared__ float scratch[32];
    int r = blockIdx.x;
    const float* rrow = raw + (long long)raw_row[r] * vocab;
    float raw_max, raw_lse;
    row_lse(rrow, vocab, scratch, raw_max, raw_lse);
    float prev_v = __int_as_float(0x7f800000);
    int prev_i = -1;
    for (int k = 0; k < n; k++)
    {
        float best = LOOM_NEG_INF;
        int id = 0x7fffffff;
        for (int j = threadIdx.x; j < vocab; j += blockDim.x)
        {
            float v = rrow[j];
            bool below = v < prev_v || (v == prev_v && j > prev_i);
            if (below && (v > best || id == 0x7fffffff)) { best = v; id = j; }
        }
        block_argmax(best, id, sv, si);
        if (threadIdx.x == 0)
        {
            out_ids[r * n + k] = id == 0x7fffffff ? -1 : id;
            out_values[r * n + k] = id == 0x7fffffff ? LOOM_NEG_INF : best - raw_lse;
        }
        prev_v = best;
        prev_i = id;
    }
}
