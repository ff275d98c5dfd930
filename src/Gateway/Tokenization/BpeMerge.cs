namespace Loom.Gateway.Tokenization;

/// <summary>
/// HF's BPE merge loop: repeatedly merge the adjacent pair with the lowest merge rank (leftmost on
/// ties), using a priority queue over a linked list, so a word of n symbols costs O(n log n). Shared
/// by <see cref="CharBpeModel"/> and the long words of <see cref="ByteLevelBpeModel"/>.
/// </summary>
internal static class BpeMerge
{
    // Priority-queue operations on this thread: tests bound the work per symbol with it, a count
    // that stays exact on a loaded machine where timings do not.
    [ThreadStatic] private static long t_queueOperations;
    internal static long QueueOperations => t_queueOperations;

    public static long Key(int a, int b) => ((long)a << 32) | (uint)b;

    /// <summary>Merges <paramref name="ids"/> (the initial symbols, modified in place) and returns the final ids.</summary>
    public static int[] Merge(int[] ids, Dictionary<long, (int Rank, int NewId)> merges)
    {
        int count = ids.Length;
        if (count < 2)
        {
            return ids;
        }
        var prev = new int[count];
        var next = new int[count];
        for (int i = 0; i < count; i++)
        {
            prev[i] = i - 1;
            next[i] = i + 1 < count ? i + 1 : -1;
        }
        var alive = new bool[count];
        Array.Fill(alive, true);
        var queue = new PriorityQueue<int, long>();
        for (int i = 0; i + 1 < count; i++)
        {
            if (merges.TryGetValue(Key(ids[i], ids[i + 1]), out var m))
            {
                queue.Enqueue(i, ((long)m.Rank << 32) | (uint)i);
            }
        }
        t_queueOperations += queue.Count;
        while (queue.TryDequeue(out int pos, out long priority))
        {
            t_queueOperations++;
            int right = next[pos];
            if (!alive[pos] || right < 0)
            {
                continue;
            }
            // Stale entry: the pair at pos changed since it was queued.
            if (!merges.TryGetValue(Key(ids[pos], ids[right]), out var m) || m.Rank != (int)(priority >> 32))
            {
                continue;
            }
            ids[pos] = m.NewId;
            alive[right] = false;
            next[pos] = next[right];
            if (next[pos] >= 0)
            {
                prev[next[pos]] = pos;
            }
            if (prev[pos] >= 0 && merges.TryGetValue(Key(ids[prev[pos]], ids[pos]), out var left))
            {
                queue.Enqueue(prev[pos], ((long)left.Rank << 32) | (uint)prev[pos]);
                t_queueOperations++;
            }
            if (next[pos] >= 0 && merges.TryGetValue(Key(ids[pos], ids[next[pos]]), out var after))
            {
                queue.Enqueue(pos, ((long)after.Rank << 32) | (uint)pos);
                t_queueOperations++;
            }
        }
        var output = new List<int>(count);
        for (int i = 0; i >= 0; i = next[i])
        {
            output.Add(ids[i]);
        }
        return [.. output];
    }
}
