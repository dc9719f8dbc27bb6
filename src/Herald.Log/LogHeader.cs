namespace Herald.Log;

/// <summary>A record header: a UTF-8 key and a byte value, as in Kafka.</summary>
public readonly record struct LogHeader(string Key, ReadOnlyMemory<byte> Value);
