using Engine.Protocol;
using Engine.Protocol.Messages;
using Engine.Server.Handlers;

namespace Engine.Server;

internal sealed partial class ServerConnection
{
    /// <summary>Runs one request to its terminal frame: result, Error or Overloaded. Never throws.</summary>
    private async Task RunRequestAsync(ActiveRequest request, object body)
    {
        uint stream = request.StreamId;
        CancellationToken token = request.Token;
        OutgoingFrame? terminal = null;
        try
        {
            (Opcode op, object result) = body switch
            {
                HealthRequest => (Opcode.HealthResult, (object)_server.Health()),
                RecommendRequest r => (Opcode.RecommendResult, await RecommendAsync(r, token).ConfigureAwait(false)),
                GenerateRequest g => (Opcode.GenerateDone, await GenerateAsync(stream, g, token).ConfigureAwait(false)),
                EventBatch e => (Opcode.EventsAck, await EventsAsync(e, token).ConfigureAwait(false)),
                CatalogUpsertRequest c => (Opcode.CatalogUpsertResult, await (_server.Handlers.Catalog ?? throw NotAvailable(ServerHandlers.NoCatalog)).UpsertAsync(c, token).ConfigureAwait(false)),
                ExperimentCommand x => (Opcode.ExperimentResult, await (_server.Handlers.Experiments ?? throw NotAvailable(ServerHandlers.NoExperiments)).ExecuteAsync(x, token).ConfigureAwait(false)),
                StatsRequest s => (Opcode.StatsResult, _server.Stats(s.Prefix)),
                FeedbackExportRequest f => (Opcode.FeedbackExportResult, await (_server.Handlers.FeedbackExport ?? throw NotAvailable(ServerHandlers.NoFeedbackExport)).ExportAsync(f, token).ConfigureAwait(false)),
                _ => throw new ProtocolException(ErrorCode.UnknownOpcode, $"no handler for {body.GetType().Name}"),
            };
            terminal = new OutgoingFrame(op, FrameFlags.End, stream, result);
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            ErrorCode reason = request.Reason;
            terminal = Error(stream, reason, reason switch
            {
                ErrorCode.Cancelled => "cancelled by the client",
                ErrorCode.ShuttingDown => "server shutting down",
                _ => "deadline exceeded",
            });
        }
        catch (ProtocolException e)
        {
            terminal = Error(stream, e.Code, e.Message);
        }
        catch (ServerOverloadedException e)
        {
            _server.CountOverloaded();
            terminal = new OutgoingFrame(Opcode.Overloaded, FrameFlags.End, stream,
                new OverloadedBody { RetryAfterMs = (uint)Math.Clamp(e.RetryAfter.TotalMilliseconds, 0, uint.MaxValue), Message = e.Message });
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            terminal = Error(stream, ErrorCode.Internal, e.Message);
        }

        // Free the stream id before the terminal frame can reach the client, so it may reuse the id at once.
        _active.TryRemove(stream, out _);
        request.Dispose();
        try
        {
            if (!_abort.IsCancellationRequested) await SendAsync(terminal!.Value).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or System.Threading.Channels.ChannelClosedException)
        {
            // The connection is closing: nobody to answer.
        }
        RequestEnded();
    }

    private OutgoingFrame Error(uint stream, ErrorCode code, string message)
    {
        _server.CountError(code);
        return new OutgoingFrame(Opcode.Error, FrameFlags.End, stream, ErrorBody.Of(code, message));
    }

    private static ProtocolException NotAvailable(string message) => new(ErrorCode.NotAvailable, message);

    private static ProtocolException Invalid(string message) => new(ErrorCode.InvalidArgument, message);

    private async ValueTask<object> RecommendAsync(RecommendRequest request, CancellationToken token)
    {
        IRecommendHandler handler = _server.Handlers.Recommend ?? throw NotAvailable(ServerHandlers.NoRanking);
        if (request.K is < 1 or > 1000) throw Invalid($"k must be in 1..1000, got {request.K}");
        return await handler.RecommendAsync(request, token).ConfigureAwait(false);
    }

    private async ValueTask<object> GenerateAsync(uint stream, GenerateRequest request, CancellationToken token)
    {
        IGenerateHandler handler = _server.Handlers.Generate ?? throw NotAvailable(ServerHandlers.NoGenerator);
        if (string.IsNullOrEmpty(request.Prompt)) throw Invalid("prompt is empty");
        if (request.MaxTokens is < 1 or > 4096) throw Invalid($"max tokens must be in 1..4096, got {request.MaxTokens}");
        var sink = new StreamTokenSink(this, stream, request.Stream);
        return await handler.GenerateAsync(request, sink, token).ConfigureAwait(false);
    }

    private async ValueTask<object> EventsAsync(EventBatch batch, CancellationToken token)
    {
        IEventSink sink = _server.Handlers.Events ?? throw NotAvailable(ServerHandlers.NoEventSink);
        ShopperEvent[] events = batch.Events ?? [];
        if (events.Length is < 1 or > 10_000) throw Invalid($"a batch holds 1..10000 events, got {events.Length}");
        foreach (ShopperEvent e in events)
        {
            if (e is null) throw Invalid("null event in batch");
            if (e.Kind is 0 or > (byte)EventKind.Return) throw Invalid($"unknown event kind {e.Kind}");
        }
        int accepted = await sink.AcceptAsync(events, token).ConfigureAwait(false);
        return new EventsAck { Accepted = accepted };
    }

    /// <summary>Frames generated text as GenerateToken with gap-free sequence numbers.</summary>
    private sealed class StreamTokenSink(ServerConnection connection, uint stream, bool enabled) : ITokenSink
    {
        private uint _sequence;

        public ValueTask WriteAsync(string text, CancellationToken cancellationToken)
        {
            if (!enabled || text.Length == 0) return ValueTask.CompletedTask;
            var token = new GenerateToken { Sequence = _sequence++, Text = text };
            return connection._outgoing.Writer.WriteAsync(new OutgoingFrame(Opcode.GenerateToken, FrameFlags.None, stream, token), cancellationToken);
        }
    }
}
