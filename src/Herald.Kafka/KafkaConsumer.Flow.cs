using Confluent.Kafka;
using Herald.Transport;
using HeraldPartition = Herald.Transport.TopicPartition;
using KafkaPartition = Confluent.Kafka.TopicPartition;

namespace Herald.Kafka;

/// <summary>Pausing: the pipeline's pauses (its budgets full) and the consumer's own (records
/// held between fetches at their limit), kept apart so that neither resumes the other's.</summary>
internal sealed partial class KafkaConsumer
{
    public void Pause(IEnumerable<HeraldPartition> partitions) => SetPipelinePause(partitions, pause: true);

    public void Resume(IEnumerable<HeraldPartition> partitions) => SetPipelinePause(partitions, pause: false);

    /// <summary>The pipeline's pause of partitions it owns; a resume leaves alone those paused
    /// for the held records.</summary>
    private void SetPipelinePause(IEnumerable<HeraldPartition> partitions, bool pause)
    {
        ArgumentNullException.ThrowIfNull(partitions);
        lock (_flow)
        {
            var owned = _assignment;
            var which = partitions.Where(owned.Contains).ToList();
            if (pause) _pausedByPipeline.UnionWith(which);
            else _pausedByPipeline.ExceptWith(which);
            Flow(pause ? which : which.Where(tp => !_pausedForStash.Contains(tp)), pause);
        }
    }

    /// <summary>The held records reached their limit: every partition pauses until they are taken.</summary>
    private void PauseForStash()
    {
        lock (_flow)
        {
            var which = _assignment.Where(_pausedForStash.Add).ToList();
            Flow(which, pause: true);
        }
    }

    private void ResumeAfterStash()
    {
        lock (_flow)
        {
            if (_pausedForStash.Count == 0) return;
            var owned = _assignment;
            var which = _pausedForStash.Where(tp => owned.Contains(tp) && !_pausedByPipeline.Contains(tp)).ToList();
            _pausedForStash.Clear();
            Flow(which, pause: false);
        }
    }

    private void Flow(IEnumerable<HeraldPartition> partitions, bool pause)
    {
        foreach (var perConsumer in partitions.GroupBy(p => ConsumerOf(p.Topic)))
        {
            try
            {
                var which = perConsumer.Select(KafkaTransport.ToKafka).ToList();
                if (pause) perConsumer.Key.Pause(which);
                else perConsumer.Key.Resume(which);
            }
            catch (KafkaException)
            {
                // A partition revoked meanwhile: nothing to pause or resume.
            }
        }
    }
}
