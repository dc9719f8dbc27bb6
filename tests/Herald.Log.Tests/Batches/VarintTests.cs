using CsCheck;
using Herald.Log.Batches;

namespace Herald.Log.Tests.Batches;

public class VarintTests
{
    [Theory]
    [InlineData(0, "00")]
    [InlineData(-1, "01")]
    [InlineData(1, "02")]
    [InlineData(-2, "03")]
    [InlineData(63, "7E")]
    [InlineData(-64, "7F")]
    [InlineData(64, "8001")]
    [InlineData(-65, "8101")]
    [InlineData(300, "D804")]
    [InlineData(int.MaxValue, "FEFFFFFF0F")]
    [InlineData(int.MinValue, "FFFFFFFF0F")]
    public void Int32_encodes_as_Kafka_zigzag_varint(int value, string hex)
    {
        var buffer = new byte[Varint.MaxInt32Bytes];
        var n = Varint.Write(buffer, value);
        Assert.Equal(hex, Convert.ToHexString(buffer, 0, n));
        Assert.Equal(n, Varint.SizeOf(value));
        Assert.True(Varint.TryRead(Convert.FromHexString(hex), out int back, out var read));
        Assert.Equal(value, back);
        Assert.Equal(n, read);
    }

    [Theory]
    [InlineData(0L, "00")]
    [InlineData(-1L, "01")]
    [InlineData(1L, "02")]
    [InlineData(5L, "0A")] // Sarama's "5 ms timestamp delta"
    [InlineData(1L << 31, "8080808010")]
    [InlineData(long.MaxValue, "FEFFFFFFFFFFFFFFFF01")]
    [InlineData(long.MinValue, "FFFFFFFFFFFFFFFFFF01")]
    public void Int64_encodes_as_Kafka_zigzag_varlong(long value, string hex)
    {
        var buffer = new byte[Varint.MaxInt64Bytes];
        var n = Varint.Write(buffer, value);
        Assert.Equal(hex, Convert.ToHexString(buffer, 0, n));
        Assert.Equal(n, Varint.SizeOf(value));
        Assert.True(Varint.TryRead(Convert.FromHexString(hex), out long back, out var read));
        Assert.Equal(value, back);
        Assert.Equal(n, read);
    }

    [Fact]
    public void Int32_round_trips_and_reads_only_its_own_bytes()
    {
        Gen.Select(Gen.Int, Gen.Byte.Array[0, 4]).Sample((value, trailing) =>
        {
            var buffer = new byte[Varint.MaxInt32Bytes + trailing.Length];
            var n = Varint.Write(buffer, value);
            trailing.CopyTo(buffer, n);
            return n == Varint.SizeOf(value)
                && Varint.TryRead(buffer, out int back, out var read) && back == value && read == n;
        }, iter: 5000);
    }

    [Fact]
    public void Int64_round_trips_and_reads_only_its_own_bytes()
    {
        Gen.Select(Gen.Long, Gen.Byte.Array[0, 4]).Sample((value, trailing) =>
        {
            var buffer = new byte[Varint.MaxInt64Bytes + trailing.Length];
            var n = Varint.Write(buffer, value);
            trailing.CopyTo(buffer, n);
            return n == Varint.SizeOf(value)
                && Varint.TryRead(buffer, out long back, out var read) && back == value && read == n;
        }, iter: 5000);
    }

    [Fact]
    public void A_truncated_varint_is_refused()
    {
        Gen.Long.Where(v => Varint.SizeOf(v) > 1).Sample(value =>
        {
            var buffer = new byte[Varint.MaxInt64Bytes];
            var n = Varint.Write(buffer, value);
            return !Varint.TryRead(buffer.AsSpan(0, n - 1), out long _, out _);
        }, iter: 1000);
        Assert.False(Varint.TryRead([], out int _, out _));
    }

    [Fact]
    public void An_over_long_varint_is_refused()
    {
        Assert.False(Varint.TryRead([0x80, 0x80, 0x80, 0x80, 0x80, 0x00], out int _, out _));
        Assert.False(Varint.TryRead([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00], out long _, out _));
    }
}
