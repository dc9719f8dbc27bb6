using System.Text;
using CsCheck;
using Herald.Transport;

namespace Herald.Tests.Transport;

public class PartitionerTests
{
    // Apache Kafka, clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java, testMurmur2
    // (apache/kafka at 1eb7644349cb07139d6a3c1ad1986979647cac99): the Java client's Utils.murmur2 of
    // the keys' bytes. Lengths 2, 3, 6, 24, 26 and 48 cover every tail length but 1 (see below).
    [Theory]
    [InlineData("21", -973932308)]
    [InlineData("foobar", -790332482)]
    [InlineData("a-little-bit-long-string", -985981536)]
    [InlineData("a-little-bit-longer-string", -1486304829)]
    [InlineData("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971)]
    [InlineData("abc", 479470107)]
    public void Murmur2_matches_the_Java_client(string key, int expected) =>
        Assert.Equal(expected, Partitioner.Murmur2(Encoding.UTF8.GetBytes(key)));

    // Apache Kafka, streams/src/test/java/org/apache/kafka/streams/integration/
    // KTableKTableForeignKeyInnerJoinMultiIntegrationTest.java (same commit), table2: string keys
    // (StringSerializer, so their UTF-8 bytes) with the partitions "pre-computed using the default
    // Murmur2 hash" for 3 partitions, as the comment there says. One-byte keys: the tail-of-1 case.
    [Theory]
    [InlineData("0", 2)]
    [InlineData("1", 0)]
    [InlineData("2", 2)]
    [InlineData("3", 2)]
    [InlineData("4", 1)]
    [InlineData("5", 0)]
    [InlineData("6", 1)]
    [InlineData("7", 0)]
    [InlineData("8", 0)]
    [InlineData("9", 2)]
    public void ForKey_matches_the_partitions_Kafka_computes_for_three_partitions(string key, int expected) =>
        Assert.Equal(expected, Partitioner.ForKey(Encoding.UTF8.GetBytes(key), 3));

    [Fact]
    public void ForKey_is_in_range_and_is_the_positive_murmur2_modulo_the_partition_count()
    {
        Gen.Select(Gen.Byte.Array[0, 80], Gen.Int[1, 10_000]).Sample((key, partitions) =>
        {
            var p = Partitioner.ForKey(key, partitions);
            Assert.InRange(p, 0, partitions - 1);
            Assert.Equal((Partitioner.Murmur2(key) & 0x7fffffff) % partitions, p);
        }, iter: 10_000);
    }

    [Fact]
    public void Murmur2_agrees_with_a_reference_written_in_Java_int_arithmetic()
    {
        // The vectors above pin a handful of inputs; this compares every length and byte value
        // (bytes above 0x7f sign-extend in Java: the tail must mask them).
        Gen.Byte.Array[0, 64].Sample(key => Assert.Equal(JavaMurmur2(key), Partitioner.Murmur2(key)), iter: 10_000);
    }

    [Fact]
    public void ForKey_refuses_a_partition_count_below_one() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => Partitioner.ForKey("k"u8, 0));

    /// <summary>murmur2 as the Java client computes it: signed 32-bit ints, sign-extended bytes
    /// masked with 0xff, unsigned shifts (>>> in Java).</summary>
    private static int JavaMurmur2(byte[] data)
    {
        unchecked
        {
            var length = data.Length;
            const int m = 0x5bd1e995;
            const int r = 24;
            var h = (int)0x9747b28c ^ length;
            var length4 = length / 4;
            for (var i = 0; i < length4; i++)
            {
                var i4 = i * 4;
                var k = (data[i4] & 0xff) + ((data[i4 + 1] & 0xff) << 8) + ((data[i4 + 2] & 0xff) << 16) + ((data[i4 + 3] & 0xff) << 24);
                k *= m;
                k ^= k >>> r;
                k *= m;
                h *= m;
                h ^= k;
            }
            var rest = length % 4;
            if (rest == 3) h ^= (data[(length & ~3) + 2] & 0xff) << 16;
            if (rest >= 2) h ^= (data[(length & ~3) + 1] & 0xff) << 8;
            if (rest >= 1)
            {
                h ^= data[length & ~3] & 0xff;
                h *= m;
            }
            h ^= h >>> 13;
            h *= m;
            h ^= h >>> 15;
            return h;
        }
    }
}
