#include "common.cuh"

// Sampling on the GPU: only the chosen ids (and their logprobs) cross to the host, never the
// logits. One block of 1024 threads per sample slot; logits fp32 [rows, vocab]. The algorithm is
// SamplingBatch's (C#), and ReferenceDeviceSampler is its step-for-step CPU twin.

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

// One slot per block: greedy below the temperature epsilon, otherwise temperature, min_p, top_k and
// top_p, then one draw with the slot's uniform u in [0, 1): probs = softmax(adjusted / t); keep
// p >= min_p * p_max; the top_k and top_p cuts raise that probability threshold by bisection (40
// halvings of [tau, p_max]; the kept set is {p >= tau}, ties kept); the draw walks the kept mass
// in id order. top_k <= 0 and top_p >= 1 disable those cuts.
// The logprob is the chosen id's under the raw row's softmax (raw_row[slot] picks the row).
extern "C" __global__ void sample_rows(const float* __restrict__ adjusted, const float* __restrict__ raw, const int* __restrict__ raw_row, int vocab,
                                       const float* __restrict__ temperature, const int* __restrict__ top_k, const float* __restrict__ top_p,
                                       const float* __restrict__ min_p, const float* __restrict__ uniform, int* __restrict__ out_ids,
                                       float* __restrict__ out_logprobs)
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
    float raw_max, raw_lse;
    row_lse(rrow, vocab, scratch, raw_max, raw_lse);

    int pick = id;
    if (temperature[r] >= 1e-5f && best != LOOM_NEG_INF)
    {
        float inv_t = 1.f / temperature[r];
        float z = 0.f;
        for (int j = threadIdx.x; j < vocab; j += blockDim.x) z += __expf((row[j] - best) * inv_t);
        z = block_sum(z, scratch);
        float p_max = 1.f / z;
        float tau = min_p[r] > 0.f ? min_p[r] * p_max : 0.f;
        // top_k among what min_p kept, then top_p of what is left, renormalised (vLLM's order): each a
        // bisection for the largest threshold whose kept set still has k tokens / the mass.
        int k = top_k[r];
        if (k > 0 && k < vocab)
        {
            float lo = tau, hi = p_max;
            for (int it = 0; it < 40; it++)
            {
                float mid = 0.5f * (lo + hi), count = 0.f;
                for (int j = threadIdx.x; j < vocab; j += blockDim.x)
                    if (__expf((row[j] - best) * inv_t) / z >= mid) count += 1.f;
                count = block_sum(count, scratch);
                if (count >= (float)k) lo = mid; else hi = mid;
            }
            tau = lo;
        }
        float pp = top_p[r];
        if (pp < 1.f)
        {
            float base = 0.f;
            for (int j = threadIdx.x; j < vocab; j += blockDim.x)
            {
                float p = __expf((row[j] - best) * inv_t) / z;
                if (p >= tau) base += p;
            }
            float need = pp * block_sum(base, scratch);
            float lo = tau, hi = p_max;
            for (int it = 0; it < 40; it++)
            {
                float mid = 0.5f * (lo + hi), mass = 0.f;
                for (int j = threadIdx.x; j < vocab; j += blockDim.x)
                {
                    float p = __expf((row[j] - best) * inv_t) / z;
                    if (p >= mid) mass += p;
                }
                mass = block_sum(mass, scratch);
                if (mass >= need) lo = mid; else hi = mid;
            }
            tau = lo;
        }

        // Kept mass per thread over a contiguous chunk, then a serial prefix over the chunks.
        int chunk = (vocab + blockDim.x - 1) / blockDim.x;
        int from = threadIdx.x * chunk, to = min(vocab, from + chunk);
        float mine = 0.f;
        for (int j = from; j < to; j++)
        {
            float p = __expf((row[j] - best) * inv_t) / z;
            if (p >= tau) mine += p;
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
                        float p = __expf((row[j] - best) * inv_t) / z;
                        if (p < tau) continue;
                        run += p;
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
    if (threadIdx.x == 0)
    {
        out_ids[r] = pick;
        out_logprobs[r] = rrow[pick] - raw_lse;
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
