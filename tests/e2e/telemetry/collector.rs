//! A real OTLP trace receiver for the tests: `POST /v1/traces` (OTLP/HTTP, protobuf) over
//! HTTP/1.1, or the gRPC `TraceService/Export` over cleartext HTTP/2, decoding each export as a
//! collector does; and lookups of the spans it received.

use std::convert::Infallible;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

const GRPC_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// The OTLP transport a [`Collector`] speaks (and kubegate's `OTEL_EXPORTER_OTLP_PROTOCOL`).
#[derive(Clone, Copy, Debug)]
pub(super) enum Protocol {
    Http,
    Grpc,
}

impl Protocol {
    pub(super) fn name(self) -> &'static str {
        match self {
            Protocol::Http => "http/protobuf",
            Protocol::Grpc => "grpc",
        }
    }
}

/// What a collector was sent: every export request, and why any request was refused.
#[derive(Clone, Default)]
struct Received {
    exports: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    refused: Arc<Mutex<Vec<String>>>,
}

impl Received {
    fn store(&self, export: ExportTraceServiceRequest) {
        self.exports
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(export);
    }

    fn refuse(&self, why: String) {
        self.refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(why);
    }
}

/// One span as it arrived, with its resource's `service.name`.
pub(super) struct ReceivedSpan {
    pub(super) service: Option<String>,
    pub(super) span: Span,
}

/// An OTLP trace receiver on 127.0.0.1: `POST /v1/traces` over HTTP/1.1, or the gRPC
/// `TraceService/Export` over cleartext HTTP/2, answering every export it can decode as a
/// collector does.
pub(super) struct Collector {
    pub(super) endpoint: String,
    received: Received,
    accepting: tokio::task::JoinHandle<()>,
}

impl Collector {
    pub(super) async fn start(protocol: Protocol) -> Result<Collector> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let received = Received::default();
        let accepting = tokio::spawn(accept(listener, protocol, received.clone()));
        Ok(Collector {
            endpoint,
            received,
            accepting,
        })
    }

    /// Every span received so far.
    pub(super) fn spans(&self) -> Vec<ReceivedSpan> {
        let exports = self
            .received
            .exports
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut spans = Vec::new();
        for resource_spans in exports.iter().flat_map(|e| &e.resource_spans) {
            let service = resource_spans.resource.as_ref().and_then(|r| {
                r.attributes
                    .iter()
                    .find(|kv| kv.key == "service.name")
                    .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                        AnyValue::StringValue(name) => Some(name.clone()),
                        _ => None,
                    })
            });
            for span in resource_spans.scope_spans.iter().flat_map(|s| &s.spans) {
                spans.push(ReceivedSpan {
                    service: service.clone(),
                    span: span.clone(),
                });
            }
        }
        spans
    }

    /// Requests it could not take, and why.
    pub(super) fn refused(&self) -> Vec<String> {
        self.received
            .refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until a server span named `name` for JSON-RPC request `id` has arrived.
    pub(super) async fn wait_for(&self, name: &str, id: &str) -> Result<()> {
        for _ in 0..150 {
            if server_span(&self.spans(), name, id).is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "no span `{name}` for request {id} within 15 s; refused: {:?}",
            self.refused()
        )
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

async fn accept(listener: tokio::net::TcpListener, protocol: Protocol, received: Received) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let io = TokioIo::new(stream);
        let received = received.clone();
        tokio::spawn(async move {
            match protocol {
                Protocol::Http => {
                    let service = hyper::service::service_fn(move |request| {
                        export_over_http(received.clone(), request)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                }
                Protocol::Grpc => {
                    let service = hyper::service::service_fn(move |request| {
                        export_over_grpc(received.clone(), request)
                    });
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(io, service)
                        .await;
                }
            }
        });
    }
}

fn content_type(request: &Request<Incoming>) -> String {
    request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// OTLP/HTTP: a protobuf `ExportTraceServiceRequest` in, an empty response out.
async fn export_over_http(
    received: Received,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let kind = content_type(&request);
    let decoded = if request.method() != Method::POST || request.uri().path() != "/v1/traces" {
        Err((
            StatusCode::NOT_FOUND,
            format!("{} {}", request.method(), request.uri()),
        ))
    } else if kind != "application/x-protobuf" {
        Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("content-type `{kind}`"),
        ))
    } else {
        match request.into_body().collect().await {
            Ok(body) => ExportTraceServiceRequest::decode(body.to_bytes())
                .map_err(|e| (StatusCode::BAD_REQUEST, format!("not an export: {e}"))),
            Err(e) => Err((StatusCode::BAD_REQUEST, format!("reading the body: {e}"))),
        }
    };
    let (status, body) = match decoded {
        Ok(export) => {
            received.store(export);
            (
                StatusCode::OK,
                ExportTraceServiceResponse::default().encode_to_vec(),
            )
        }
        Err((status, why)) => {
            received.refuse(why);
            (status, Vec::new())
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-protobuf"),
    );
    Ok(response)
}

type GrpcBody =
    StreamBody<futures::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

/// OTLP/gRPC: one length-prefixed message each way, the status in the trailers.
async fn export_over_grpc(
    received: Received,
    request: Request<Incoming>,
) -> Result<Response<GrpcBody>, Infallible> {
    let kind = content_type(&request);
    let decoded = if request.method() != Method::POST || request.uri().path() != GRPC_EXPORT {
        Err(format!("{} {}", request.method(), request.uri()))
    } else if !kind.starts_with("application/grpc") {
        Err(format!("content-type `{kind}`"))
    } else {
        match request.into_body().collect().await {
            Ok(body) => unframe(&body.to_bytes()).and_then(|message| {
                ExportTraceServiceRequest::decode(message)
                    .map_err(|e| format!("not an export: {e}"))
            }),
            Err(e) => Err(format!("reading the body: {e}")),
        }
    };
    let mut frames = Vec::new();
    let status = match decoded {
        Ok(export) => {
            received.store(export);
            let message = ExportTraceServiceResponse::default().encode_to_vec();
            frames.push(Ok(Frame::data(frame(&message))));
            "0"
        }
        Err(why) => {
            received.refuse(why);
            // INVALID_ARGUMENT
            "3"
        }
    };
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static(status));
    frames.push(Ok(Frame::trailers(trailers)));
    let mut response = Response::new(StreamBody::new(futures::stream::iter(frames)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    Ok(response)
}

/// The message of one gRPC frame: an uncompressed flag, a big-endian length, the bytes.
fn unframe(body: &[u8]) -> Result<&[u8], String> {
    let [compressed, a, b, c, d, message @ ..] = body else {
        return Err(format!("{} bytes: shorter than a gRPC frame", body.len()));
    };
    if *compressed != 0 {
        return Err("a compressed message (no compression was configured)".to_owned());
    }
    let length = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
    if message.len() != length {
        return Err(format!(
            "a frame of {length} bytes with {} after its header",
            message.len()
        ));
    }
    Ok(message)
}

fn frame(message: &[u8]) -> Bytes {
    let mut framed = Vec::with_capacity(5 + message.len());
    framed.push(0);
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(message);
    Bytes::from(framed)
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a AnyValue> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

pub(super) fn text<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    match attribute(span, key) {
        Some(AnyValue::StringValue(text)) => Some(text),
        _ => None,
    }
}

pub(super) fn int(span: &Span, key: &str) -> Option<i64> {
    match attribute(span, key) {
        Some(AnyValue::IntValue(value)) => Some(*value),
        _ => None,
    }
}

/// The server span `name` of JSON-RPC request `id`.
pub(super) fn server_span<'a>(
    spans: &'a [ReceivedSpan],
    name: &str,
    id: &str,
) -> Result<&'a ReceivedSpan> {
    spans
        .iter()
        .find(|s| s.span.name == name && text(&s.span, "jsonrpc.request.id") == Some(id))
        .with_context(|| {
            let names: Vec<_> = spans.iter().map(|s| s.span.name.as_str()).collect();
            format!("no span `{name}` for request {id} among {names:?}")
        })
}

/// The spans whose parent is `parent`.
pub(super) fn children<'a>(spans: &'a [ReceivedSpan], parent: &Span) -> Vec<&'a Span> {
    spans
        .iter()
        .map(|s| &s.span)
        .filter(|s| s.trace_id == parent.trace_id && s.parent_span_id == parent.span_id)
        .collect()
}
