using Loom.Benchmarks.Baselines;
using Loom.Silo.Engine;
using Loom.Silo.Blocks;

namespace Loom.Silo.Tests.Engine;

/// <summary>
/// Seeded random workloads against both managers. Besides the managers' own invariants, the test keeps
/// a shadow of the KV contents (which token each slot holds) to prove that a prefix hit only ever hands
/// out blocks holding exactly the prompt's tokens, and that no sequence writes into a shared block.
/// </summary>
public class KvCacheAccountingPropertyTests
{
    private const int Ops = 2000;
    private const int NumBlocks = 48;
    private const int Bs = 4;
    private const int MaxLen = 64;

    public static TheoryData<int> Seeds()
    {
        var d = new TheoryData<int>();
        for (int s = 1; s <= 20; s++) d.Add(s);
        return d;
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void PagedManagerKeepsItsBooks(int seed) =>
        new Driver(new KvCacheManager(NumBlocks, Bs), seed).Run();

    [Theory]
    [MemberData(nameof(Seeds))]
    public void PagedManagerWithoutCachingKeepsItsBooks(int seed) =>
        new Driver(new KvCacheManager(NumBlocks, Bs, enablePrefixCaching: false), seed).Run();

    [Theory]
    [MemberData(nameof(Seeds))]
    public void ContiguousManagerKeepsItsBooks(int seed) =>
        new Driver(new ContiguousKvCacheManager(NumBlocks * 4, Bs, MaxLen), seed).Run();

    private sealed class Driver(IKvCacheManager m, int seed)
    {
        private readonly Random _rng = new(seed);
        private readonly Dictionary<long, Seq> _live = new();
        private readonly List<long> _freed = new();
        private readonly int[][] _kv = NewShadow(m.TotalBlocks, m.BlockSize);
        private long _nextId = 1;
        private int _hits;

        // A handful of shared prefixes so that prompts collide and the cache gets used.
        private readonly int[][] _prefixes =
        [
            Enumerable.Range(1000, 12).ToArray(),
            Enumerable.Range(2000, 9).ToArray(),
            [.. Enumerable.Range(1000, 8), .. Enumerable.Range(3000, 8)],
        ];

        private sealed record Seq(List<int> Tokens, ulong Salt);

        private static int[][] NewShadow(int blocks, int bs) =>
            Enumerable.Range(0, blocks).Select(_ => Enumerable.Repeat(-1, bs).ToArray()).ToArray();

        public void Run()
        {
            for (int op = 0; op < Ops; op++)
            {
                int r = _rng.Next(100);
                if (r < 30 || _live.Count == 0) Submit();
                else if (r < 70) Grow();
                else if (r < 97) Free();
                else DoubleFree();
                Check();
            }
            foreach (var id in _live.Keys.ToList()) { m.Free(id); _live.Remove(id); }
            Check();
            var s = m.Stats;
            Assert.Equal(0, s.UsedBlocks);
            Assert.Equal(s.TotalBlocks, s.FreeBlocks);
            Assert.Equal(0, m.ReservedSlots);
            Assert.Equal(0, m.UsedSlots);
            if (m.EnablePrefixCaching)
            {
                Assert.True(_hits > 0, "the workload never hit the prefix cache");
                Assert.True(m.ResetPrefixCache());
                m.CheckInvariants();
            }
        }

        private void Submit()
        {
            var tokens = new List<int>(_prefixes[_rng.Next(_prefixes.Length)]);
            int tail = _rng.Next(0, 10);
            for (int i = 0; i < tail; i++) tokens.Add(_rng.Next(50));
            ulong salt = _rng.Next(10) == 0 ? 7UL : 0UL;
            long id = _nextId++;
            var prompt = tokens.ToArray();

            var (blocks, computed) = m.GetComputedBlocks(id, prompt, salt);
            Assert.True(computed < prompt.Length);
            Assert.Equal(0, computed % m.BlockSize);
            Assert.Equal(computed / m.BlockSize, blocks.Count);
            for (int b = 0; b < blocks.Count; b++)
                for (int j = 0; j < m.BlockSize; j++)
                    Assert.Equal(prompt[b * m.BlockSize + j], _kv[blocks[b].BlockId][j]); // never wrong KV

            var before = m.Stats;
            if (!m.AllocateSlots(id, prompt.Length - computed, blocks, computed))
            {
                Assert.False(m.Contains(id));
                Assert.Equal(before, m.Stats);
                return;
            }
            if (computed > 0) _hits++;
            Write(id, prompt, computed);
            m.CacheBlocks(id, prompt, prompt.Length, salt);
            _live.Add(id, new Seq(tokens, salt));
        }

        private void Grow()
        {
            long id = Pick();
            var seq = _live[id];
            int k = _rng.Next(1, 7);
            if (seq.Tokens.Count + k > MaxLen) { FreeSeq(id); return; } // finished at max length
            var before = m.Stats;
            var table = m.BlockTable(id).ToArray();
            if (!m.AllocateSlots(id, k))
            {
                Assert.Equal(before, m.Stats);
                Assert.Equal(table, m.BlockTable(id).ToArray());
                FreeSeq(id); // preempted, as the scheduler would
                return;
            }
            int start = seq.Tokens.Count;
            for (int i = 0; i < k; i++) seq.Tokens.Add(_rng.Next(50));
            var all = seq.Tokens.ToArray();
            Write(id, all, start);
            m.CacheBlocks(id, all, all.Length, seq.Salt);
        }

        private void Free()
        {
            FreeSeq(Pick());
        }

        private void DoubleFree()
        {
            if (_freed.Count == 0) { Free(); return; }
            long id = _freed[_rng.Next(_freed.Count)];
            var before = m.Stats;
            Assert.Throws<InvalidOperationException>(() => m.Free(id));
            Assert.Equal(before, m.Stats);
        }

        private void FreeSeq(long id)
        {
            m.Free(id);
            _live.Remove(id);
            _freed.Add(id);
        }

        private long Pick() => _live.Keys.ElementAt(_rng.Next(_live.Count));

        /// <summary>Simulates the model step writing KV for tokens [from, end) of the sequence.</summary>
        private void Write(long id, int[] tokens, int from)
        {
            var table = m.BlockTable(id);
            Assert.True(table.Length * m.BlockSize >= tokens.Length);
            for (int i = from; i < tokens.Length; i++)
            {
                int block = table[i / m.BlockSize];
                Assert.Equal(1, m.RefCountOf(block)); // never write into a shared block
                _kv[block][i % m.BlockSize] = tokens[i];
            }
        }

        private void AssertTableHolds(long id, List<int> tokens)
        {
            var table = m.BlockTable(id);
            for (int i = 0; i < tokens.Count; i++)
                Assert.Equal(tokens[i], _kv[table[i / m.BlockSize]][i % m.BlockSize]);
        }

        private void Check()
        {
            m.CheckInvariants();
            var s = m.Stats;
            Assert.Equal(s.TotalBlocks, s.FreeBlocks + s.UsedBlocks);
            Assert.True(s.CachedFreeBlocks <= s.FreeBlocks);
            Assert.True(s.UsedSlots <= s.ReservedSlots);
            Assert.True(s.PrefixHits <= s.PrefixQueries);
            foreach (var (id, seq) in _live)
            {
                Assert.Equal(seq.Tokens.Count, m.NumTokensOf(id));
                Assert.Equal(m.NumBlocksOf(id), m.BlockTable(id).Length);
            }
        }
    }
}
