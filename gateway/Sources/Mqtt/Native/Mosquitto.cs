using System.Runtime.InteropServices;

namespace CityGateway.Sources.Mqtt.Native;

/// <summary>
/// Source-generated bindings to Eclipse Mosquitto's client library (libmosquitto.so.1, Debian
/// package libmosquitto1). Only what the gateway and the simulators use is bound.
/// </summary>
internal static unsafe partial class Mosquitto
{
    private const string Lib = "libmosquitto.so.1";

    public const int ErrSuccess = 0;
    public const int ErrNoConn = 4;
    public const int ErrConnLost = 7;
    public const int ErrErrno = 14;

    public const int OptProtocolVersion = 1;
    public const int OptReceiveMaximum = 4;
    public const int OptSendMaximum = 5;
    public const int OptTcpNoDelay = 11;

    public const int ProtocolV311 = 4;
    public const int ProtocolV5 = 5;

    public const int PropSessionExpiryInterval = 17;

    [StructLayout(LayoutKind.Sequential)]
    public struct Message
    {
        public int Mid;
        public byte* Topic;
        public byte* Payload;
        public int PayloadLen;
        public int Qos;
        [MarshalAs(UnmanagedType.U1)] public bool Retain;
    }

    [LibraryImport(Lib, EntryPoint = "mosquitto_lib_init")]
    public static partial int LibInit();

    [LibraryImport(Lib, EntryPoint = "mosquitto_lib_version")]
    public static partial int LibVersion(out int major, out int minor, out int revision);

    [LibraryImport(Lib, EntryPoint = "mosquitto_new", StringMarshalling = StringMarshalling.Utf8)]
    public static partial IntPtr New(string? id, [MarshalAs(UnmanagedType.U1)] bool cleanSession, IntPtr userData);

    [LibraryImport(Lib, EntryPoint = "mosquitto_destroy")]
    public static partial void Destroy(IntPtr mosq);

    [LibraryImport(Lib, EntryPoint = "mosquitto_int_option")]
    public static partial int IntOption(IntPtr mosq, int option, int value);

    [LibraryImport(Lib, EntryPoint = "mosquitto_username_pw_set", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int UsernamePwSet(IntPtr mosq, string? username, string? password);

    [LibraryImport(Lib, EntryPoint = "mosquitto_tls_set", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int TlsSet(IntPtr mosq, string? caFile, string? caPath, string? certFile, string? keyFile, IntPtr passwordCallback);

    [LibraryImport(Lib, EntryPoint = "mosquitto_tls_insecure_set")]
    public static partial int TlsInsecureSet(IntPtr mosq, [MarshalAs(UnmanagedType.U1)] bool value);

    [LibraryImport(Lib, EntryPoint = "mosquitto_reconnect_delay_set")]
    public static partial int ReconnectDelaySet(IntPtr mosq, uint delay, uint delayMax, [MarshalAs(UnmanagedType.U1)] bool exponential);

    [LibraryImport(Lib, EntryPoint = "mosquitto_max_inflight_messages_set")]
    public static partial int MaxInflightMessagesSet(IntPtr mosq, uint max);

    [LibraryImport(Lib, EntryPoint = "mosquitto_connect_bind_v5", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int ConnectBindV5(IntPtr mosq, string host, int port, int keepalive, string? bindAddress, IntPtr properties);

    [LibraryImport(Lib, EntryPoint = "mosquitto_disconnect")]
    public static partial int Disconnect(IntPtr mosq);

    [LibraryImport(Lib, EntryPoint = "mosquitto_loop_start")]
    public static partial int LoopStart(IntPtr mosq);

    [LibraryImport(Lib, EntryPoint = "mosquitto_loop_stop")]
    public static partial int LoopStop(IntPtr mosq, [MarshalAs(UnmanagedType.U1)] bool force);

    [LibraryImport(Lib, EntryPoint = "mosquitto_subscribe", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Subscribe(IntPtr mosq, out int mid, string sub, int qos);

    [LibraryImport(Lib, EntryPoint = "mosquitto_unsubscribe", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Unsubscribe(IntPtr mosq, out int mid, string sub);

    [LibraryImport(Lib, EntryPoint = "mosquitto_publish")]
    public static partial int Publish(IntPtr mosq, out int mid, byte* topic, int payloadLen, byte* payload, int qos, [MarshalAs(UnmanagedType.U1)] bool retain);

    [LibraryImport(Lib, EntryPoint = "mosquitto_property_add_int32")]
    public static partial int PropertyAddInt32(ref IntPtr properties, int identifier, uint value);

    [LibraryImport(Lib, EntryPoint = "mosquitto_property_free_all")]
    public static partial void PropertyFreeAll(ref IntPtr properties);

    [LibraryImport(Lib, EntryPoint = "mosquitto_strerror")]
    public static partial IntPtr StrError(int code);

    [LibraryImport(Lib, EntryPoint = "mosquitto_reason_string")]
    public static partial IntPtr ReasonString(int code);

    [LibraryImport(Lib, EntryPoint = "mosquitto_connack_string")]
    public static partial IntPtr ConnackString(int code);

    [LibraryImport(Lib, EntryPoint = "mosquitto_connect_v5_callback_set")]
    public static partial void ConnectV5CallbackSet(IntPtr mosq, delegate* unmanaged[Cdecl]<IntPtr, IntPtr, int, int, IntPtr, void> callback);

    [LibraryImport(Lib, EntryPoint = "mosquitto_disconnect_v5_callback_set")]
    public static partial void DisconnectV5CallbackSet(IntPtr mosq, delegate* unmanaged[Cdecl]<IntPtr, IntPtr, int, IntPtr, void> callback);

    [LibraryImport(Lib, EntryPoint = "mosquitto_message_v5_callback_set")]
    public static partial void MessageV5CallbackSet(IntPtr mosq, delegate* unmanaged[Cdecl]<IntPtr, IntPtr, Message*, IntPtr, void> callback);

    [LibraryImport(Lib, EntryPoint = "mosquitto_publish_v5_callback_set")]
    public static partial void PublishV5CallbackSet(IntPtr mosq, delegate* unmanaged[Cdecl]<IntPtr, IntPtr, int, int, IntPtr, void> callback);

    [LibraryImport(Lib, EntryPoint = "mosquitto_subscribe_callback_set")]
    public static partial void SubscribeCallbackSet(IntPtr mosq, delegate* unmanaged[Cdecl]<IntPtr, IntPtr, int, int, int*, void> callback);

    [LibraryImport(Lib, EntryPoint = "mosquitto_unsubscribe_callback_set")]
    public static partial void UnsubscribeCallbackSet(IntPtr mosq, delegate* unmanaged[Cdecl]<IntPtr, IntPtr, int, void> callback);

    public static string ErrorText(int code) => Marshal.PtrToStringUTF8(StrError(code)) ?? $"error {code}";

    public static string ReasonText(int code) => Marshal.PtrToStringUTF8(ReasonString(code)) ?? $"reason {code}";

    public static string ConnackText(int code) => Marshal.PtrToStringUTF8(ConnackString(code)) ?? $"connack {code}";
}
