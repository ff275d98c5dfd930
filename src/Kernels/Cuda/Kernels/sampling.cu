#include "common.cuh"

// Sampling on the GPU: only the chosen ids (and their logprobs) cross to the host, never the
// logits. One block of 1024 threads per row; logits fp32 [rows, vocab].

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

// Greedy: the argmax id and its log-softmax value.
extern "C" __global__ void sample_greedy(const float* __restrict__ logits, int vocab, int* __restrict__ out_ids, float* __restrict__ out_logprobs)
{
    __shared__ float sv[SAMPLE_THREADS];
    __shared__ int si[SAMPLE_THREADS];
    __shared__ float scratch[32];
    const float* row = logits + (long long)blockIdx.x * vocab;
    float best = LOOM_NEG_INF;
    int id = 0x7fffffff;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x)
        if (row[j] > best) { best = row[j]; id = j; }
    block_argmax(best, id, sv, si);
    float sum = 0.f;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) sum += __expf(row[j] - best);
    sum = block_sum(sum, scratch);
    if (threadIdx.x == 0)
    {
        out_ids[blockIdx.x] = id;
        out_logprobs[blockIdx.x] = -__logf(sum);
    }
}

// Temperature, min_p, top_k and top_p, then one draw with the caller's uniform u in [0, 1):
// probs = softmax(logits / t); keep p >= min_p * p_max; the top_k / top_p cut is a probability
// threshold found by bisection (40 halvings of [0, p_max]: the kept set is {p >= tau}, ties kept,
// as vLLM's sort-based cut does); the draw walks the kept mass in id order. top_k <= 0 and
// top_p >= 1 disable those cuts. Writes the id and its log-probability under the unfiltered softmax.
extern "C" __global__ void sample_filtered(const float* __restrict__ logits, int vocab, const float* __restrict__ temperature,
                                           const int* __restrict__ top_k, const float* __restrict__ top_p, const float* __restrict__ min_p,
                                           const float* __restrict__ uniform, int* __restrict__ out_ids, float* __restrict__ out_logprobs)
{
    __shared__ float sv[SAMPLE_THREADS];
    __shared__ int si[SAMPLE_THREADS];
    __shared__ float scratch[32];
    __shared__ float chunk_mass[SAMPLE_THREADS];
    int r = blockIdx.x;
    const float* row = logits + (long long)r * vocab;
    float inv_t = 1.f / temperature[r];
    float best = LOOM_NEG_INF;
    int id = 0x7fffffff;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x)
        if (row[j] > best) { best = row[j]; id = j; }
    block_argmax(best, id, sv, si);
    float z = 0.f, z_raw = 0.f;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x)
    {
        z += __expf((row[j] - best) * inv_t);
        z_raw += __expf(row[j] - best);
    }
    z = block_sum(z, scratch);
    z_raw = block_sum(z_raw, scratch);
    float p_max = 1.f / z;
    float tau = min_p[r] > 0.f ? min_p[r] * p_max : 0.f;

    int k = top_k[r];
    float pp = top_p[r];
    if ((k > 0 && k < vocab) || pp < 1.f)
    {
        float lo = tau, hi = p_max;
        for (int it = 0; it < 40; it++)
        {
            float mid = 0.5f * (lo + hi);
            float mass = 0.f, count = 0.f;
            for (int j = threadIdx.x; j < vocab; j += blockDim.x)
            {
                float p = __expf((row[j] - best) * inv_t) / z;
                if (p >= mid) { mass += p; count += 1.f; }
            }
            mass = block_sum(mass, scratch);
            count = block_sum(count, scratch);
            // Raise tau while the kept set still satisfies both cuts' "at least" side.
            bool enough = (pp >= 1.f || mass >= pp) && (k <= 0 || count >= (float)k);
            if (enough) lo = mid; else hi = mid;
        }
        tau = fmaxf(tau, lo);
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
        int pick = id;
        for (int t = 0; t < blockDim.x && pick == id; t++)
        {
            if (run + chunk_mass[t] > target && chunk_mass[t] > 0.f)
            {
                int a = t * chunk, b = min(vocab, a + chunk);
                for (int j = a; j < b; j++)
                {
                    float p = __expf((row[j] - best) * inv_t) / z;
                    if (p < tau) continue;
                    run += p;
                    if (run > target) { pick = j; break; }
                }
                break;
            }
            run += chunk_mass[t];
        }
        out_ids[r] = pick;
        out_logprobs[r] = row[pick] - best - __logf(z_raw);
    }
}
