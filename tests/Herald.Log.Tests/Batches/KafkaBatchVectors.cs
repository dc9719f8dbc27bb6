namespace Herald.Log.Tests.Batches;

/// <summary>RecordBatch v2 bytes produced by another Kafka client (Sarama's record_test.go, the
/// "uncompressed record" and "gzipped record" cases): base offset 0, leader epoch 0, first timestamp
/// 1479847795000, one record with key 01020304, value 050607, timestamp delta 5 ms and one header
/// (key 08090A, value 0B0C). Their CRCs were computed by that client, not by Herald.</summary>
internal static class KafkaBatchVectors
{
    public const long FirstTimestamp = 1_479_847_795_000;

    public static byte[] Uncompressed() =>
    [
        0, 0, 0, 0, 0, 0, 0, 0, // base offset
        0, 0, 0, 70, // length
        0, 0, 0, 0, // partition leader epoch
        2, // magic
        84, 121, 97, 253, // CRC-32C
        0, 0, // attributes
        0, 0, 0, 0, // last offset delta
        0, 0, 1, 88, 141, 205, 89, 56, // first timestamp
        0, 0, 0, 0, 0, 0, 0, 0, // max timestamp
        0, 0, 0, 0, 0, 0, 0, 0, // producer id
        0, 0, // producer epoch
        0, 0, 0, 0, // base sequence
        0, 0, 0, 1, // record count
        40, 0, 10, 0, 8, 1, 2, 3, 4, 6, 5, 6, 7, 2, 6, 8, 9, 10, 4, 11, 12,
    ];

    public static byte[] Gzipped() =>
    [
        0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 95,
        0, 0, 0, 0,
        2,
        231, 74, 206, 165,
        0, 1, // attributes: gzip
        0, 0, 0, 0,
        0, 0, 1, 88, 141, 205, 89, 56,
        0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0,
        0, 0,
        0, 0, 0, 0,
        0, 0, 0, 1,
        31, 139, 8, 0, 0, 9, 110, 136, 0, 255, 0, 21, 0, 234, 255, 40, 0, 10, 0, 8, 1, 2,
        3, 4, 6, 5, 6, 7, 2, 6, 8, 9, 10, 4, 11, 12, 3, 0, 173, 201, 88, 103, 21, 0, 0, 0,
    ];
}
