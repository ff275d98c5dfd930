using Loom.Silo.Configuration;
using Loom.Silo.Routing;
using Loom.Silo.Worker;
using Loom.Gateway.Tokenization;
using Loom.Gateway.Templates;
using Loom.Gateway.Serving;
using Loom.Gateway.Grpc;
using Loom.Gateway.Metrics;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Loom.Gateway.OpenAi;

/// <summary>
/// The whole front door in two calls for the host: <c>services.AddLoomApi(...)</c> then
/// <c>app.MapLoomApi()</c>. The host supplies <see cref="Serving.IGenerationClient"/> (Orleans or
/// embedded) and may replace <see cref="IModelTextFactory"/>.
/// </summary>
public static class LoomApiExtensions
{
    /// <summary>The API with default settings, adjusted by <paramref name="configure"/> (tests and embedding hosts).</summary>
    public static IServiceCollection AddLoomApi(this IServiceCollection services, Action<LoomGatewayOptions>? configure = null)
    {
        services.AddOptions<LoomGatewayOptions>();
        if (configure is not null) services.Configure(configure);
        return services.AddLoomApiServices();
    }

    /// <summary>The API reading <paramref name="options"/> itself: the gateway section the host bound from its configuration.</summary>
    public static IServiceCollection AddLoomApi(this IServiceCollection services, LoomGatewayOptions options)
    {
        services.AddSingleton<IOptions<LoomGatewayOptions>>(Options.Create(options));
        return services.AddLoomApiServices();
    }

    private static IServiceCollection AddLoomApiServices(this IServiceCollection services)
    {
        services.TryAddSingleton<IModelTextFactory, HfModelTextFactory>();
        services.TryAddSingleton<LoomMetrics>();
        services.TryAddSingleton<ApiKeys>();
        services.TryAddSingleton<RequestGate>();
        services.TryAddSingleton<ServedModel>();
        services.TryAddSingleton<GenerationRunner>();
        services.TryAddSingleton<ApiEndpoints>();
        services.TryAddSingleton<CompletionsEndpoint>();
        services.TryAddSingleton<ChatCompletionsEndpoint>();
        // Every gRPC method checks the API key before it runs.
        services.AddGrpc(o => o.Interceptors.Add<ApiKeyInterceptor>());
        return services;
    }

    public static WebApplication MapLoomApi(this WebApplication app)
    {
        var options = app.Services.GetRequiredService<IOptions<LoomGatewayOptions>>().Value;
        app.UseMiddleware<ApiMiddleware>();

        app.MapGet("/v1/models", ctx => Api(ctx).ModelsAsync(ctx));
        app.MapGet("/v1/models/{model}", ctx => Api(ctx).ModelAsync(ctx));
        app.MapPost("/v1/completions", ctx => ctx.RequestServices.GetRequiredService<CompletionsEndpoint>().HandleAsync(ctx));
        app.MapPost("/v1/chat/completions", ctx => ctx.RequestServices.GetRequiredService<ChatCompletionsEndpoint>().HandleAsync(ctx));
        app.MapPost("/tokenize", ctx => Api(ctx).TokenizeAsync(ctx));
        app.MapPost("/detokenize", ctx => Api(ctx).DetokenizeAsync(ctx));
        app.MapGet("/health", ctx => Api(ctx).HealthAsync(ctx));
        app.MapGet("/version", ctx => Api(ctx).VersionAsync(ctx));
        app.MapGet("/metrics", ctx => Api(ctx).MetricsAsync(ctx));

        // The host listens for it on grpc_port with HTTP/2 only: h2c and HTTP/1.1 cannot share a cleartext port.
        if (options.GrpcPort > 0) app.MapGrpcService<GenerationGrpcService>();
        return app;
    }

    private static ApiEndpoints Api(HttpContext ctx) => ctx.RequestServices.GetRequiredService<ApiEndpoints>();
}
