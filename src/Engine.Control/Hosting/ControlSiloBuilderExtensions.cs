using Engine.Control.Catalog;
using Engine.Control.Experiments;
using Engine.Control.Sessions;
using Engine.Control.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Orleans.Hosting;
using Orleans.Runtime.Hosting;
using Orleans.Storage;
using StackExchange.Redis;

namespace Engine.Control.Hosting;

/// <summary>Configures a silo of the control plane.</summary>
public static class ControlSiloBuilderExtensions
{
    /// <summary>Clustering and storage from <paramref name="hosting"/> (Redis when a connection string
    /// is given, else localhost and memory with a warning), plus <see cref="AddControlServices"/>.</summary>
    public static ISiloBuilder UseEngineControl(this ISiloBuilder silo, ControlHostingOptions hosting, Action<ControlOptions>? configure = null)
    {
        silo.Configure<ClusterOptions>(o => { o.ClusterId = hosting.ClusterId; o.ServiceId = hosting.ServiceId; });
        if (hosting.Redis is null)
        {
            silo.UseLocalhostClustering(hosting.SiloPort, hosting.GatewayPort, null, hosting.ServiceId, hosting.ClusterId);
            // One silo is the whole cluster here: its states live in this process (LocalGrainStorage), without the
            // storage grain call and state copy per read and write of Orleans' memory storage.
            silo.Services.AddGrainStorage(ControlStorage.Name, static (sp, _) => new LocalGrainStorage(
                new ExactSizeGrainStorageSerializer(sp.GetRequiredService<Orleans.Serialization.Serializer>()),
                sp.GetRequiredService<Orleans.Serialization.Serializers.IActivatorProvider>()));
            silo.Services.AddHostedService<NonDurableStorageWarning>();
        }
        else
        {
            var redis = ParseRedis(hosting.Redis);
            silo.ConfigureEndpoints(hosting.AdvertisedAddress, hosting.SiloPort, hosting.GatewayPort, listenOnAnyHostAddress: true);
            silo.UseRedisClustering(o => o.ConfigurationOptions = redis.Clone());
            silo.AddRedisGrainStorage(ControlStorage.Name, o => o.ConfigurationOptions = redis.Clone());
            // Events are acknowledged once in this journal (one script call, one fsync, per group of
            // concurrent sink batches); the sessions' grain state above is their periodic checkpoint (JournalEventSink).
            silo.Services.AddSingleton<IEventJournal>(sp =>
            {
                var control = sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<ControlOptions>>().Value;
                return new RedisEventJournal(redis.Clone(), hosting.ServiceId, sp.GetRequiredService<Orleans.Serialization.Serializer>(),
                    control.JournalWritesInFlight, control.JournalMaxEntriesPerWrite, pipelined: !control.JournalGroupCommit,
                    batchCheckpoints: control.SessionCheckpointBatching);
            });
            // The strongly consistent grain directory (ranges handed over with the membership
            // version): with the default, eventually consistent one a silo joining under traffic
            // briefly let a session run two activations, so a read saw one event fewer than had been
            // acknowledged and the other activation's next write failed its ETag check
            // (SiloJoinTests). Experimental in Orleans 10 (ORLEANSEXP003).
#pragma warning disable ORLEANSEXP003
            silo.AddDistributedGrainDirectory();
#pragma warning restore ORLEANSEXP003
        }
        silo.Services.AddControlServices(configure);
        return silo;
    }

    /// <summary>The services grains and servers need: options, clock, default product embeddings,
    /// the event journal (in memory unless a Redis one was registered), the journaling event sink and
    /// its applier (a silo lifecycle participant), the silo's feedback buffer and its flusher (a silo lifecycle participant),
    /// and the local experiment assigner (started as a hosted service).</summary>
    public static IServiceCollection AddControlServices(this IServiceCollection services, Action<ControlOptions>? configure = null)
    {
        var options = services.AddOptions<ControlOptions>();
        if (configure is not null) options.Configure(configure);
        options.Validate(o => { o.Rewards.Validate(); return o.StatsShards > 0 && o.DedupWindow > 0 && o.ProfileHalfLife > TimeSpan.Zero
            && o.JournalApplyInterval > TimeSpan.Zero && o.SessionCheckpointInterval > TimeSpan.Zero && o.JournalReadBatch > 0 && o.SessionCheckpointEntries >= 0 && o.JournalApplyBacklog > 0 && o.JournalApplyMinEntries > 0 && o.JournalApplyMaxDelay >= TimeSpan.Zero
            && o.JournalWritesInFlight > 0 && o.JournalMaxEntriesPerWrite > 0; },
            "Control options: rewards must be ordered, StatsShards, DedupWindow, ProfileHalfLife, JournalApplyInterval, SessionCheckpointInterval, JournalReadBatch, JournalWritesInFlight and JournalMaxEntriesPerWrite positive, SessionCheckpointEntries not negative, JournalApplyBacklog and JournalApplyMinEntries positive, JournalApplyMaxDelay not negative");
        UseBinaryStateSerializer<MemoryGrainStorageOptions>(services);
        UseBinaryStateSerializer<Orleans.Persistence.RedisStorageOptions>(services);
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<IProductEmbeddings, GrainProductEmbeddings>();
        // Cross-session group commit: the sink journals a batch in one store write and acknowledges;
        // the applier has the sessions apply it (JournalEventSink). GrainEventSink stays available
        // (one session call and write per customer before the ack).
        services.TryAddSingleton<IEventJournal, MemoryEventJournal>();
        services.TryAddSingleton<IEventSink, JournalEventSink>();
        if (!services.Any(d => d.ServiceType == typeof(JournalApplier)))
        {
            services.AddSingleton<JournalApplier>();
            services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => sp.GetRequiredService<JournalApplier>());
        }
        services.TryAddSingleton<Feedback.FeedbackBuffer>();
        if (!services.Any(d => d.ServiceType == typeof(Feedback.FeedbackFlusher)))
        {
            services.AddSingleton<Feedback.FeedbackFlusher>();
            services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => sp.GetRequiredService<Feedback.FeedbackFlusher>());
        }
        services.TryAddSingleton<ExperimentAssigner>();
        services.TryAddSingleton<IExperimentAssigner>(sp => sp.GetRequiredService<ExperimentAssigner>());
        services.AddHostedService(sp => sp.GetRequiredService<ExperimentAssigner>());
        return services;
    }

    /// <summary>Grain state of the control storage provider is written with Orleans' binary serializer
    /// (the <c>[GenerateSerializer]</c>/<c>[Id]</c> contracts, version tolerant) instead of the
    /// default System.Text.Json one: a session's state (a 384-float profile, 512 event ids) is
    /// written on every acknowledged call, and as JSON it cost about 200 KB of allocation and most of
    /// the CPU per event (EventIngestionBenchmarks, bench/RESULTS.md). Options of a provider that is
    /// not registered are never read, so both are configured.</summary>
    private static void UseBinaryStateSerializer<TOptions>(IServiceCollection services) where TOptions : class, IStorageProviderSerializerOptions =>
        services.AddOptions<TOptions>(ControlStorage.Name)
            .Configure<Orleans.Serialization.Serializer>((o, serializer) => o.GrainStorageSerializer ??= new Storage.ExactSizeGrainStorageSerializer(serializer));

    /// <summary>Parses "host:port[,options]" with settings for a store that must not lose
    /// acknowledged writes silently: keep retrying the connection instead of failing once.</summary>
    public static ConfigurationOptions ParseRedis(string connection)
    {
        ConfigurationOptions redis;
        try { redis = ConfigurationOptions.Parse(connection); }
        catch (ArgumentException ex) { throw new ArgumentException($"--redis '{connection}' is not a Redis connection string (host:port[,options]): {ex.Message}", ex); }
        if (redis.EndPoints.Count == 0) throw new ArgumentException($"--redis '{connection}' names no endpoint (expected host:port)");
        redis.AbortOnConnectFail = false;
        return redis;
    }

    private sealed class NonDurableStorageWarning(ILogger<NonDurableStorageWarning> log) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            log.LogWarning("control plane: localhost clustering and in-memory grain storage; sessions, experiments and stats are NOT durable and are lost when this process stops (pass a Redis connection for durable state)");
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
