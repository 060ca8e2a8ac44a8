using System.Net;

namespace Engine.Control.Hosting;

/// <summary>How a silo of the control plane is hosted (the `engine serve` flags map onto this).</summary>
public sealed class ControlHostingOptions
{
    /// <summary>Redis connection string ("host:port[,options]"). Null: localhost clustering and
    /// in-memory storage (one silo, state not durable).</summary>
    public string? Redis { get; set; }

    /// <summary>Silo-to-silo port (Orleans' default 11111).</summary>
    public int SiloPort { get; set; } = 11111;

    /// <summary>Client gateway port (Orleans' default 30000).</summary>
    public int GatewayPort { get; set; } = 30000;

    /// <summary>Address other silos reach this one at (with Redis clustering).</summary>
    public IPAddress AdvertisedAddress { get; set; } = IPAddress.Loopback;

    /// <summary>Cluster id: silos with the same id and store form one cluster.</summary>
    public string ClusterId { get; set; } = "engine";

    /// <summary>Service id: keys the grain state in the store (keep it across deployments).</summary>
    public string ServiceId { get; set; } = "engine";
}
