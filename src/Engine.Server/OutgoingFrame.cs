using Engine.Protocol;

namespace Engine.Server;

/// <summary>A frame queued for a connection's send loop; the body is serialized there, straight into the output pipe.</summary>
internal readonly record struct OutgoingFrame(Opcode Opcode, FrameFlags Flags, uint StreamId, object? Body);
