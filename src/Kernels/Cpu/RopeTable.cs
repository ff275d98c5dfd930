namespace Loom.Kernels.Cpu;

/// <summary>
/// Cached cos/sin rows per position for one rotary configuration. Recomputing them costs ~1 µs
/// per token per call (double cos/sin), which is ~5% of a prefill at 2 calls per layer.
/// Row p holds cos[0..half) then sin[0..half) of position p, already times attentionScaling.
/// </summary>
internal sealed unsafe class RopeTable : IDisposable
{
    private readonly object _gate = new();
    private float[] _invFreq = [];
    private float _scaling;
    private float* _rows;
    private int _positions;

    /// <summary>
    /// Runs <paramref name="use"/> with a table that covers positions [0, maxPosition]; the table
    /// is only valid inside the callback (a later call may regrow it).
    /// </summary>
    public void With<TState>(ReadOnlySpan<float> invFreq, float scaling, int maxPosition, ref TState state, UseTable<TState> use)
        where TState : struct
    {
        lock (_gate)
        {
            if (!invFreq.SequenceEqual(_invFreq) || BitConverter.SingleToInt32Bits(scaling) != BitConverter.SingleToInt32Bits(_scaling))
            {
                _invFreq = invFreq.ToArray();
                _scaling = scaling;
                Release();
            }

            if (maxPosition >= _positions) Grow(Math.Max(maxPosition + 1, Math.Max(2 * _positions, 1024)));
            use(_rows, ref state);
        }
    }

    public delegate void UseTable<TState>(float* rows, ref TState state);

    private void Grow(int positions)
    {
        int half = _invFreq.Length;
        float* rows = (float*)NativeBuffer.Alloc((long)positions * 2 * half * sizeof(float));
        if (_rows != null) Buffer.MemoryCopy(_rows, rows, (long)_positions * 2 * half * 4, (long)_positions * 2 * half * 4);
        for (int p = _positions; p < positions; p++)
        {
            float* row = rows + (long)p * 2 * half;
            for (int i = 0; i < half; i++)
            {
                // HF forms the angle in fp32 (position * inv_freq) and takes cos/sin of that fp32 value;
                // double cos/sin of the same fp32 angle rounds to what torch returns.
                float angle = (float)p * _invFreq[i];
                row[i] = (float)Math.Cos(angle) * _scaling;
                row[half + i] = (float)Math.Sin(angle) * _scaling;
            }
        }

        NativeBuffer.Release(_rows);
        _rows = rows;
        _positions = positions;
    }

    private void Release()
    {
        NativeBuffer.Release(_rows);
        _rows = null;
        _positions = 0;
    }

    public void Dispose()
    {
        lock (_gate) Release();
    }
}
