using System.Buffers;
using Herald.Log.Batches;
using Herald.Log.Internal;

namespace Herald.Log.Segments;

/// <summary>Reads a segment file batch by batch from the start, validating each (length, magic,
/// offsets, CRC-32C), and rebuilds its indexes. Used by recovery and by index rebuilds.</summary>
internal static class SegmentScanner
{
    /// <summary>The result of a scan: how many bytes hold valid batches, and the first invalid
    /// batch if any, with whether valid batches follow it (corruption) or not (a torn tail).</summary>
    public readonly record struct ScanResult(long ValidLength, long NextOffset, long InvalidAt, string? Reason, bool ValidBatchFollows);

    public static ScanResult Scan(LogFile file, long baseOffset, int maxBatchBytes, SegmentIndex index)
    {
        var fileLength = file.Length;
        var bufferSize = Math.Max(4 << 20, maxBatchBytes + RecordBatch.LogOverhead);
        var buffer = ArrayPool<byte>.Shared.Rent(bufferSize);
        try
        {
            long bufferStart = 0;
            var bufferLength = 0;
            long position = 0;
            var nextOffset = baseOffset;
            while (position < fileLength)
            {
                // Keep the batch at `position` wholly in the buffer when it fits.
                var rel = (int)(position - bufferStart);
                if (bufferLength - rel < RecordBatch.HeaderSize || (bufferLength - rel) < Peek(buffer, rel, bufferLength))
                {
                    bufferStart = position;
                    bufferLength = ReadAt(file, buffer.AsSpan(0, bufferSize), position);
                    rel = 0;
                }
                var available = buffer.AsSpan(rel, bufferLength - rel);
                var reason = Check(available, fileLength - position, nextOffset, baseOffset, maxBatchBytes, out var header);
                if (reason is not null)
                {
                    var follows = ValidBatchFollows(file, position, fileLength, nextOffset, maxBatchBytes, buffer.AsSpan(0, bufferSize));
                    return new ScanResult(position, nextOffset, position, reason, follows);
                }
                index.OnBatch(header.BaseOffset, position, header.TotalSize, header.MaxTimestamp);
                nextOffset = header.NextOffset;
                position += header.TotalSize;
            }
            return new ScanResult(position, nextOffset, -1, null, false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static int Peek(byte[] buffer, int rel, int bufferLength)
    {
        var size = RecordBatch.TotalSize(buffer.AsSpan(rel, bufferLength - rel));
        return size is < 0 or > int.MaxValue ? int.MaxValue : (int)size;
    }

    private static int ReadAt(LogFile file, Span<byte> buffer, long position)
    {
        var total = 0;
        while (total < buffer.Length)
        {
            var n = file.Read(buffer[total..], position + total);
            if (n <= 0) break;
            total += n;
        }
        return total;
    }

    /// <summary>Null when a valid batch with base offset at least <paramref name="expectedOffset"/>
    /// starts <paramref name="available"/>; otherwise why not.</summary>
    private static string? Check(ReadOnlySpan<byte> available, long remainingInFile, long expectedOffset, long segmentBase, int maxBatchBytes, out RecordBatchHeader header)
    {
        header = default;
        if (remainingInFile < RecordBatch.HeaderSize || available.Length < RecordBatch.HeaderSize)
            return $"only {Math.Min(remainingInFile, available.Length)} bytes remain, less than a batch header";
        header = RecordBatch.ReadHeader(available);
        if (header.Length < RecordBatch.HeaderSize - RecordBatch.LogOverhead || header.TotalSize > maxBatchBytes)
            return $"batch length {header.Length} is out of range";
        if (header.TotalSize > remainingInFile || header.TotalSize > available.Length)
            return $"batch of {header.TotalSize} bytes runs past the end of the file";
        if (header.BaseOffset < expectedOffset || header.BaseOffset - segmentBase > int.MaxValue || header.LastOffsetDelta < 0)
            return $"batch base offset {header.BaseOffset} does not follow offset {expectedOffset}";
        var error = RecordBatch.Validate(available[..header.TotalSize], maxBatchBytes);
        return error is null ? null : $"{error.Field}: {error.Reason}";
    }

    /// <summary>Whether any valid batch starts after the invalid one at <paramref name="invalidAt"/>:
    /// first where its length field points, then at any byte (a damaged length).</summary>
    private static bool ValidBatchFollows(LogFile file, long invalidAt, long fileLength, long expectedOffset, int maxBatchBytes, Span<byte> buffer)
    {
        var scratch = buffer[..Math.Min(buffer.Length, RecordBatch.HeaderSize)];
        if (ReadAt(file, scratch, invalidAt) == RecordBatch.HeaderSize)
        {
            var claimed = RecordBatch.TotalSize(scratch);
            if (claimed >= RecordBatch.HeaderSize && claimed <= maxBatchBytes && IsValidAt(file, invalidAt + claimed, fileLength, expectedOffset, maxBatchBytes))
                return true;
        }
        // Slide over the rest of the file looking for the magic byte of a batch that validates.
        var window = buffer;
        for (var start = invalidAt + 1; start < fileLength;)
        {
            var n = ReadAt(file, window, start);
            if (n < RecordBatch.HeaderSize) return false;
            for (var i = 0; i + RecordBatch.HeaderSize <= n; i++)
            {
                if (window[i + RecordBatch.MagicOffset] != RecordBatch.CurrentMagic) continue;
                if (IsValidAt(file, start + i, fileLength, expectedOffset, maxBatchBytes)) return true;
            }
            start += n - RecordBatch.HeaderSize + 1;
        }
        return false;
    }

    private static bool IsValidAt(LogFile file, long position, long fileLength, long expectedOffset, int maxBatchBytes)
    {
        Span<byte> head = stackalloc byte[RecordBatch.HeaderSize];
        if (position + RecordBatch.HeaderSize > fileLength || ReadAt(file, head, position) != RecordBatch.HeaderSize) return false;
        var header = RecordBatch.ReadHeader(head);
        if (header.Magic != RecordBatch.CurrentMagic || header.BaseOffset < expectedOffset) return false;
        if (header.TotalSize < RecordBatch.HeaderSize || header.TotalSize > maxBatchBytes || position + header.TotalSize > fileLength) return false;
        var batch = new byte[header.TotalSize];
        return ReadAt(file, batch, position) == batch.Length && RecordBatch.Validate(batch, maxBatchBytes) is null;
    }
}
