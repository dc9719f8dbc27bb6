namespace Herald.Internal.Versioning;

/// <summary>One registered upcaster of event type <typeparamref name="T"/>: from version
/// <see cref="From"/>, read as <see cref="FromType"/>, to version <c>From + 1</c>, as
/// <see cref="ToType"/>.</summary>
internal abstract class UpcastStep<T>(int from, Type fromType, Type toType)
{
    public int From { get; } = from;
    public Type FromType { get; } = fromType;
    public Type ToType { get; } = toType;

    /// <summary>The reader of version <see cref="From"/>: this step, then <paramref name="next"/>'s
    /// composed steps (the reader of version <c>From + 1</c>, whose type
    /// <see cref="EventVersions.Compose{T}"/> has checked is <see cref="ToType"/>).</summary>
    public abstract VersionReader ComposeOnto(VersionReader next, int current, string eventName);
}

internal sealed class UpcastStep<T, TOld, TNext>(int from, Func<TOld, TNext> upcast) : UpcastStep<T>(from, typeof(TOld), typeof(TNext))
{
    public override VersionReader ComposeOnto(VersionReader next, int current, string eventName)
    {
        var from = From;
        TNext Step(TOld old)
        {
            TNext result;
            try
            {
                result = upcast(old);
            }
            catch (Exception e)
            {
                throw new UpcastFailedException(eventName, from, e);
            }
            return result ?? throw new UpcastFailedException(eventName, from, null);
        }

        // The last step returns T itself (checked at start): no further hop through an identity.
        if (from + 1 == current) return new VersionReader<TOld, T>(from, (Func<TOld, T>)(object)new Func<TOld, TNext>(Step));
        var rest = ((VersionReader<TNext, T>)next).ToCurrent;
        return new VersionReader<TOld, T>(from, old => rest(Step(old)));
    }
}
