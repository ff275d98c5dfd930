using Grpc.Core;
using Grpc.Core.Interceptors;
using Loom.Gateway.OpenAi;

namespace Loom.Gateway.Grpc;

/// <summary>
/// The API key for every gRPC method, checked before the method runs: one place, so a method
/// added later cannot forget it. The HTTP middleware lets gRPC endpoints through to this.
/// </summary>
internal sealed class ApiKeyInterceptor(ApiKeys keys) : Interceptor
{
    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(request, context);
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(request, responseStream, context);
    }

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(requestStream, context);
    }

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context,
        DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(context);
        return continuation(requestStream, responseStream, context);
    }

    private void Check(ServerCallContext context)
    {
        if (!keys.Enabled) return;
        string? header = context.RequestHeaders.GetValue("authorization");
        if (header is null || !header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            throw new RpcException(new Status(StatusCode.Unauthenticated, "missing API key: send it as 'authorization: Bearer YOUR_KEY'"));
        if (!keys.IsValid(header["Bearer ".Length..].Trim()))
            throw new RpcException(new Status(StatusCode.Unauthenticated, "incorrect API key"));
    }
}
