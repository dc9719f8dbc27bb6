using System.Globalization;
using System.Text;

namespace Herald.Bench;

/// <summary>Writes one result line: <c>scenario=NAME key=value ...</c>, invariant culture.</summary>
public sealed class BenchOutput
{
    private readonly StringBuilder _line = new();

    public BenchOutput(string scenario) => _line.Append("scenario=").Append(scenario);

    public BenchOutput Add(string key, string value)
    {
        _line.Append(' ').Append(key).Append('=').Append(value);
        return this;
    }

    public BenchOutput Add(string key, long value) => Add(key, value.ToString(CultureInfo.InvariantCulture));

    public BenchOutput Add(string key, double value, int decimals = 0) =>
        Add(key, value.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture));

    public void Print() => Console.WriteLine(_line.ToString());
}
