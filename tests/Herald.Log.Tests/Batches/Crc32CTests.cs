using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;
using System.Text;
using CsCheck;
using Herald.Log.Batches;

namespace Herald.Log.Tests.Batches;

public class Crc32CTests
{
    [Theory]
    [InlineData("123456789", 0xE3069283u)] // the CRC catalogue's check value for CRC-32C
    [InlineData("", 0x00000000u)]
    [InlineData("a", 0xC1D04330u)]
    public void Compute_matches_the_published_check_values(string ascii, uint expected)
    {
        var data = Encoding.ASCII.GetBytes(ascii);
        Assert.Equal(expected, Crc32C.Compute(data));
        Assert.Equal(expected, Crc32C.ComputeSoftware(data));
    }

    public static TheoryData<string, byte[], uint> Rfc3720Vectors => new()
    {
        { "32 bytes of zeros", new byte[32], 0x8A9136AAu },
        { "32 bytes of 0xFF", Enumerable.Repeat((byte)0xFF, 32).ToArray(), 0x62A8AB43u },
        { "32 ascending bytes", Enumerable.Range(0, 32).Select(i => (byte)i).ToArray(), 0x46DD794Eu },
        { "32 descending bytes", Enumerable.Range(0, 32).Select(i => (byte)(31 - i)).ToArray(), 0x113FDB5Cu },
    };

    [Theory]
    [MemberData(nameof(Rfc3720Vectors))]
    public void Compute_matches_the_iSCSI_test_vectors_of_RFC_3720(string name, byte[] data, uint expected)
    {
        Assert.True(Crc32C.Compute(data) == expected, $"{name}: 0x{Crc32C.Compute(data):x8} != 0x{expected:x8}");
        Assert.Equal(expected, Crc32C.ComputeSoftware(data));
    }

    [Fact]
    public void Hardware_path_equals_the_table_path_for_any_bytes_and_alignment()
    {
        // On x64 with SSE4.2 or ARMv8 with CRC, Compute takes the intrinsic path; the table path is the reference.
        Assert.True(Sse42.X64.IsSupported || Crc32.Arm64.IsSupported || !(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS()),
            "expected CRC instructions on this test machine, so that the hardware path is exercised");
        Gen.Select(Gen.Byte.Array[0, 600], Gen.Int[0, 7])
            .Sample((data, skip) =>
            {
                var slice = data.AsSpan(Math.Min(skip, data.Length));
                return Crc32C.Compute(slice) == Crc32C.ComputeSoftware(slice);
            }, iter: 2000);
    }

    [Fact]
    public void A_single_flipped_bit_changes_the_checksum()
    {
        Gen.Select(Gen.Byte.Array[1, 300], Gen.Int[0, int.MaxValue], Gen.Int[0, 7])
            .Sample((data, at, bit) =>
            {
                var before = Crc32C.Compute(data);
                data[at % data.Length] ^= (byte)(1 << bit);
                return Crc32C.Compute(data) != before;
            }, iter: 1000);
    }
}
