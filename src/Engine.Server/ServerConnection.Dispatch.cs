using System.Runtime.CompilerServices;
using Engine.Protocol;
using Engine.Protocol.Messages;
using Engine.Server.Handlers;

namespace Engine.Server;

internal sealed partial class ServerConnection
{
    /// <summary>Runs a dispatched request (on the thread pool) to its terminal frame: result, Error or Overloaded. Never throws.</summary>
    internal void Run(ActiveRequest request)
    {
        if (request.Body is RecommendRequest recommend) RunRecommend(request, recommend);
        else _ = RunRequestAsync(request, request.Body!);
    }

    /// <summary>
    /// Recommend, the hot path, without an async state machine: the handler's answer is awaited through the request
    /// itself (<see cref="ActiveRequest.AwaitRecommend"/>), so a Recommend allocates no task, box or delegate here.
    /// </summary>
    private void RunRecommend(ActiveRequest request, RecommendRequest body)
    {
        ValueTask<RecommendResult> pending;
        try
        {
            IRecommendHandler handler = _server.Handlers.Recommend ?? throw NotAvailable(ServerHandlers.NoRanking);
            if (body.K is < 1 or > 1000) throw Invalid($"k must be in 1..1000, got {body.K}");
            pending = handler.RecommendAsync(body, request.Token);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Finish(request, Failure(request, e));
            return;
        }
        if (pending.IsCompleted) CompleteRecommend(request, pending.ConfigureAwait(false).GetAwaiter());
        else request.AwaitRecommend(pending);
    }

    /// <summary>Answers a Recommend whose handler finished (<paramref name="done"/> is complete).</summary>
    internal void CompleteRecommend(ActiveRequest request, ConfiguredValueTaskAwaitable<RecommendResult>.ConfiguredValueTaskAwaiter done)
    {
        OutgoingFrame terminal;
        try
        {
            terminal = new OutgoingFrame(Opcode.RecommendResult, FrameFlags.End, request.StreamId, done.GetResult());
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            terminal = Failure(request, e);
        }
        Finish(request, terminal);
    }

    /// <summary>Ends the request (<see cref="EndRequest"/>) and queues its terminal frame; waits only if the send queue is full.</summary>
    private void Finish(ActiveRequest request, OutgoingFrame terminal)
    {
        EndRequest(request);
        if (_abort.IsCancellationRequested)
        {
            RequestEnded();
            return;
        }
        ValueTask send = SendAsync(terminal);
        if (!send.IsCompleted)
        {
            _ = FinishSendAsync(send);
            return;
        }
        try
        {
            send.GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is OperationCanceledException or System.Threading.Channels.ChannelClosedException)
        {
            // The connection is closing: nobody to answer.
        }
        RequestEnded();
    }

    private async Task FinishSendAsync(ValueTask send)
    {
        try
        {
            await send.ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or System.Threading.Channels.ChannelClosedException)
        {
            // The connection is closing: nobody to answer.
        }
        RequestEnded();
    }

    /// <summary>Any request but Recommend (<see cref="RunRecommend"/>), to its terminal frame. Never throws.</summary>
    private async Task RunRequestAsync(ActiveRequest request, object body)
    {
        uint stream = request.StreamId;
        CancellationToken token = request.Token;
        OutgoingFrame terminal;
        try
        {
            (Opcode op, object result) = body switch
            {
                HealthRequest => (Opcode.HealthResult, (object)_server.Health()),
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
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            terminal = Failure(request, e);
        }

        EndRequest(request);
        try
        {
            if (!_abort.IsCancellationRequested) await SendAsync(terminal).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or System.Threading.Channels.ChannelClosedException)
        {
            // The connection is closing: nobody to answer.
        }
        RequestEnded();
    }

    /// <summary>The terminal frame of a request that failed with <paramref name="e"/> (counted in the server's stats).</summary>
    private OutgoingFrame Failure(ActiveRequest request, Exception e)
    {
        uint stream = request.StreamId;
        switch (e)
        {
            case OperationCanceledException when request.Token.IsCancellationRequested:
                ErrorCode reason = request.Reason;
                return Error(stream, reason, reason switch
                {
                    ErrorCode.Cancelled => "cancelled by the client",
                    ErrorCode.ShuttingDown => "server shutting down",
                    _ => "deadline exceeded",
                });
            case ProtocolException p:
                return Error(stream, p.Code, p.Message);
            case ServerOverloadedException o:
                _server.CountOverloaded();
                return new OutgoingFrame(Opcode.Overloaded, FrameFlags.End, stream,
                    new OverloadedBody { RetryAfterMs = (uint)Math.Clamp(o.RetryAfter.TotalMilliseconds, 0, uint.MaxValue), Message = o.Message });
            default:
                return Error(stream, ErrorCode.Internal, e.Message);
        }
    }

    private OutgoingFrame Error(uint stream, ErrorCode code, string message)
    {
        _server.CountError(code);
        return new OutgoingFrame(Opcode.Error, FrameFlags.End, stream, ErrorBody.Of(code, message));
    }

    private static ProtocolException NotAvailable(string message) => new(ErrorCode.NotAvailable, message);

    private static ProtocolException Invalid(string message) => new(ErrorCode.InvalidArgument, message);

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
