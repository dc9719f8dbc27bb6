using Herald.DeadLetters;

namespace OrderFlow.Run;

/// <summary>A dead letter of one of this run's orders, and the (topic, group) whose dead-letter topic holds it.</summary>
public sealed record RunDeadLetter(string Topic, string Group, Guid OrderId, DeadLetter Letter);
