using System.Globalization;
using System.Text;
using CsCheck;
using Herald.Internal;

namespace Herald.Tests.Publishing;

public class EventTimeTests
{
    [Fact]
    public void Ce_time_is_written_exactly_as_the_round_trip_format_writes_a_utc_time()
    {
        // Any tick of any year, and runs of nearby times that cross minute, hour, day and year boundaries.
        var ticks = Gen.Long[DateTime.MinValue.Ticks, DateTime.MaxValue.Ticks - TimeSpan.TicksPerDay];
        Gen.Select(ticks, Gen.Long[0, 2 * TimeSpan.TicksPerMinute].Array[1, 8]).Sample((start, steps) =>
        {
            Span<byte> buffer = stackalloc byte[EventTime.Length];
            var t = start;
            foreach (var step in steps)
            {
                t = Math.Min(t + step, DateTime.MaxValue.Ticks);
                var time = new DateTime(t, DateTimeKind.Utc);
                Assert.Equal(EventTime.Length, EventTime.Format(time, buffer));
                Assert.Equal(time.ToString("O", CultureInfo.InvariantCulture), Encoding.ASCII.GetString(buffer));
            }
        });
    }

    [Fact]
    public void The_year_end_and_a_leap_day_are_formatted_like_any_other_minute()
    {
        Span<byte> buffer = stackalloc byte[EventTime.Length];
        foreach (var time in new[] { new DateTime(2026, 12, 31, 23, 59, 59, DateTimeKind.Utc).AddTicks(9_999_999), new DateTime(2028, 2, 29, 0, 0, 0, DateTimeKind.Utc), DateTime.UnixEpoch })
        {
            EventTime.Format(time, buffer);
            Assert.Equal(time.ToString("O", CultureInfo.InvariantCulture), Encoding.ASCII.GetString(buffer));
        }
    }
}
