namespace Engine.Protocol;

/// <summary>
/// What a frame carries. Wire values are explicit and append-only (STYLE.md habit 5): a value, once
/// shipped, is never renumbered or reused; <c>OpcodeFreezeTests</c> pins every one. See docs/PROTOCOL.md.
/// </summary>
public enum Opcode : byte
{
    /// <summary>Never sent; a frame with opcode 0 is answered with <see cref="ErrorCode.UnknownOpcode"/>.</summary>
    Invalid = 0,
    /// <summary>Client → server, stream 0: protocol version, capabilities, API key. Body <see cref="Messages.HelloRequest"/>.</summary>
    Hello = 1,
    /// <summary>Server → client, stream 0: handshake accepted. Body <see cref="Messages.HelloOk"/>.</summary>
    HelloOk = 2,
    /// <summary>Server → client: a request (or, on stream 0, the connection) failed. Body <see cref="Messages.ErrorBody"/>. Terminal.</summary>
    Error = 3,
    /// <summary>Server → client: not admitted now, retry after a delay. Body <see cref="Messages.OverloadedBody"/>. Terminal.</summary>
    Overloaded = 4,
    /// <summary>Client → server: cancel the request on this stream id. Empty body.</summary>
    Cancel = 5,
    /// <summary>Client → server: liveness and readiness; allowed before Hello. Body <see cref="Messages.HealthRequest"/>.</summary>
    Health = 6,
    /// <summary>Server → client. Body <see cref="Messages.HealthResult"/>. Terminal.</summary>
    HealthResult = 7,
    /// <summary>Client → server (storefront role). Body <see cref="Messages.RecommendRequest"/>.</summary>
    Recommend = 8,
    /// <summary>Server → client. Body <see cref="Messages.RecommendResult"/>. Terminal.</summary>
    RecommendResult = 9,
    /// <summary>Client → server (storefront role). Body <see cref="Messages.GenerateRequest"/>.</summary>
    Generate = 10,
    /// <summary>Server → client: one streamed text piece. Body <see cref="Messages.GenerateToken"/>. Not terminal.</summary>
    GenerateToken = 11,
    /// <summary>Server → client: the final text and attribution. Body <see cref="Messages.GenerateDone"/>. Terminal.</summary>
    GenerateDone = 12,
    /// <summary>Client → server (storefront role): one or more shopper events. Body <see cref="Messages.EventBatch"/>.</summary>
    Events = 13,
    /// <summary>Server → client: the events were handed to the control plane. Body <see cref="Messages.EventsAck"/>. Terminal.</summary>
    EventsAck = 14,
    /// <summary>Client → server (admin role). Body <see cref="Messages.CatalogUpsertRequest"/>.</summary>
    CatalogUpsert = 15,
    /// <summary>Server → client. Body <see cref="Messages.CatalogUpsertResult"/>. Terminal.</summary>
    CatalogUpsertResult = 16,
    /// <summary>Client → server (admin role): create, split, stop or roll back an experiment. Body <see cref="Messages.ExperimentCommand"/>.</summary>
    Experiment = 17,
    /// <summary>Server → client. Body <see cref="Messages.ExperimentResult"/>. Terminal.</summary>
    ExperimentResult = 18,
    /// <summary>Client → server (admin role). Body <see cref="Messages.StatsRequest"/>.</summary>
    Stats = 19,
    /// <summary>Server → client. Body <see cref="Messages.StatsResult"/>. Terminal.</summary>
    StatsResult = 20,
    /// <summary>Server → client, stream 0: the server is draining; send no new requests on this connection. Body <see cref="Messages.GoAway"/>.</summary>
    GoAway = 21,
    /// <summary>Client → server (admin role): a page of the logged recommendations and rewards. Body <see cref="Messages.FeedbackExportRequest"/>.</summary>
    FeedbackExport = 22,
    /// <summary>Server → client. Body <see cref="Messages.FeedbackExportResult"/>. Terminal.</summary>
    FeedbackExportResult = 23,
}
