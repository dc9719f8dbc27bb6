namespace Herald.Log.Batches;

/// <summary>Kafka's zig-zag varints (protobuf style), as used inside RecordBatch v2 records.</summary>
internal static class Varint
{
    public const int MaxInt32Bytes = 5;
    public const int MaxInt64Bytes = 10;

    public static int SizeOf(int value) => SizeOfUnsigned((uint)((value << 1) ^ (value >> 31)));

    public static int SizeOf(long value) => SizeOfUnsigned((ulong)((value << 1) ^ (value >> 63)));

    private static int SizeOfUnsigned(uint v)
    {
        var n = 1;
        while (v >= 0x80) { v >>= 7; n++; }
        return n;
    }

    private static int SizeOfUnsigned(ulong v)
    {
        var n = 1;
        while (v >= 0x80) { v >>= 7; n++; }
        return n;
    }

    public static int Write(Span<byte> dest, int value) => WriteUnsigned(dest, (uint)((value << 1) ^ (value >> 31)));

    public static int Write(Span<byte> dest, long value)
    {
        var v = (ulong)((value << 1) ^ (value >> 63));
        var i = 0;
        while (v >= 0x80) { dest[i++] = (byte)(v | 0x80); v >>= 7; }
        dest[i++] = (byte)v;
        return i;
    }

    private static int WriteUnsigned(Span<byte> dest, uint v)
    {
        var i = 0;
        while (v >= 0x80) { dest[i++] = (byte)(v | 0x80); v >>= 7; }
        dest[i++] = (byte)v;
        return i;
    }

    /// <summary>Reads a zig-zag int32; returns false when the bytes end early or the varint is over-long.</summary>
    public static bool TryRead(ReadOnlySpan<byte> src, out int value, out int length)
    {
        uint v = 0;
        for (var i = 0; i < MaxInt32Bytes && i < src.Length; i++)
        {
            var b = src[i];
            v |= (uint)(b & 0x7F) << (7 * i);
            if ((b & 0x80) == 0)
            {
                length = i + 1;
                value = (int)(v >> 1) ^ -(int)(v & 1);
                return true;
            }
        }
        value = 0;
        length = 0;
        return false;
    }

    /// <summary>Reads a zig-zag int64; returns false when the bytes end early or the varint is over-long.</summary>
    public static bool TryRead(ReadOnlySpan<byte> src, out long value, out int length)
    {
        ulong v = 0;
        for (var i = 0; i < MaxInt64Bytes && i < src.Length; i++)
        {
            var b = src[i];
            v |= (ulong)(b & 0x7F) << (7 * i);
            if ((b & 0x80) == 0)
            {
                length = i + 1;
                value = (long)(v >> 1) ^ -(long)(v & 1);
                return true;
            }
        }
        value = 0;
        length = 0;
        return false;
    }
}
