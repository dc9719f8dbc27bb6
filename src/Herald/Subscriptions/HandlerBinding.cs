using Herald.Internal;
using Herald.Serialization;
using Microsoft.Extensions.DependencyInjection;

namespace Herald.Subscriptions;

/// <summary>A handler bound to an event type, made once at start so that dispatch needs no
/// reflection per event.</summary>
internal abstract class HandlerBinding(EventMapping mapping)
{
    public EventMapping Mapping { get; } = mapping;

    public abstract object Deserialize(IEventSerializer serializer, ReadOnlySpan<byte> data);

    public abstract ValueTask InvokeAsync(object evt, EventContext context);
}

internal sealed class TypeHandlerBinding<T, THandler>(EventMapping mapping) : HandlerBinding(mapping)
    where THandler : class, IEventHandler<T>
{
    public override object Deserialize(IEventSerializer serializer, ReadOnlySpan<byte> data) => serializer.Deserialize<T>(data)!;

    public override ValueTask InvokeAsync(object evt, EventContext context) =>
        context.Services.GetRequiredService<THandler>().HandleAsync((T)evt, context, context.CancellationToken);
}

internal sealed class DelegateHandlerBinding<T>(EventMapping mapping, Func<T, EventContext, CancellationToken, ValueTask> handler) : HandlerBinding(mapping)
{
    public override object Deserialize(IEventSerializer serializer, ReadOnlySpan<byte> data) => serializer.Deserialize<T>(data)!;

    public override ValueTask InvokeAsync(object evt, EventContext context) => handler((T)evt, context, context.CancellationToken);
}
