//! The request-response protocols: inbound requests go to the embedding
//! program through the event channel, under per-peer rate and concurrency
//! limits; outbound requests come from handles.

use std::time::Instant;

use cyrcles_core::cbor::{Decode, Encode};
use cyrcles_core::envelope::Envelope;
use cyrcles_core::login::{DenyReason, LoginChallenge, LoginResponse};
use libp2p::request_response::{self, Message, OutboundFailure, ResponseChannel};
use libp2p::{Multiaddr, PeerId};
use tokio::sync::oneshot;

use super::{EventLoop, elapsed};
use crate::events::{NodeEvent, Responder};
use crate::handle::{Cause, Protocol, Reply, RequestError};
use crate::protocols;

/// An outbound request waiting for its answer.
pub(crate) struct PendingRequest {
    reply: Reply<Result<Vec<u8>, RequestError>>,
    started: Instant,
}

/// An inbound request whose answer is ready (or will never come).
pub(crate) struct InboundDone {
    protocol: Protocol,
    peer: PeerId,
    channel: ResponseChannel<Vec<u8>>,
    answer: Option<Vec<u8>>,
}

impl EventLoop {
    pub(crate) fn send_request(
        &mut self,
        protocol: Protocol,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        payload: Vec<u8>,
        reply: Reply<Result<Vec<u8>, RequestError>>,
    ) {
        if payload.len() > protocols::max_request(protocol) {
            let _ = reply.send(Err(RequestError::Failed(Cause::new("request too large"))));
            return;
        }
        let id = self
            .swarm
            .behaviour_mut()
            .protocol(protocol)
            .send_request_with_addresses(&peer, payload, addrs);
        self.requests.insert(
            (protocol, id),
            PendingRequest {
                reply,
                started: self.clock.instant(),
            },
        );
    }

    pub(crate) fn on_rr(
        &mut self,
        protocol: Protocol,
        event: request_response::Event<Vec<u8>, Vec<u8>>,
    ) {
        let label = protocol.label();
        match event {
            request_response::Event::Message {
                peer,
                message:
                    Message::Request {
                        request, channel, ..
                    },
                ..
            } => self.on_request(protocol, peer, request, channel),
            request_response::Event::Message {
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(p) = self.requests.remove(&(protocol, request_id)) {
                    self.metrics.request(label, "outbound", "ok");
                    self.metrics
                        .request_latency(label, elapsed(&self.clock, p.started));
                    let _ = p.reply.send(Ok(response));
                }
            }
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if let Some(p) = self.requests.remove(&(protocol, request_id)) {
                    let (outcome, err) = match error {
                        OutboundFailure::DialFailure => (
                            "unreachable",
                            RequestError::Unreachable(Cause::new("dial failed")),
                        ),
                        OutboundFailure::Timeout => ("timeout", RequestError::Timeout),
                        OutboundFailure::UnsupportedProtocols => {
                            ("unsupported", RequestError::Unsupported)
                        }
                        other => ("failed", RequestError::Failed(Cause::from_error(other))),
                    };
                    self.metrics.request(label, "outbound", outcome);
                    let _ = p.reply.send(Err(err));
                }
            }
            request_response::Event::InboundFailure { error, .. } => {
                tracing::debug!(protocol = label, %error, "inbound request failed");
                self.metrics.request(label, "inbound", "failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// Refuses a request: a login gets a signed-nothing denial, other
    /// protocols a reset stream.
    fn refuse(&mut self, protocol: Protocol, channel: ResponseChannel<Vec<u8>>, why: DenyReason) {
        if protocol == Protocol::Login {
            let _ = self
                .swarm
                .behaviour_mut()
                .login
                .send_response(channel, LoginResponse::Denied(why).to_cbor());
        }
    }

    fn on_request(
        &mut self,
        protocol: Protocol,
        peer: PeerId,
        request: Vec<u8>,
        channel: ResponseChannel<Vec<u8>>,
    ) {
        let label = protocol.label();
        let key = (protocol, peer);
        if !self.request_limiter.allow(&key, self.clock.instant()) {
            self.metrics.request(label, "inbound", "rate_limited");
            self.refuse(protocol, channel, DenyReason::RateLimited);
            return;
        }
        if !self.inflight.start(&key) {
            self.metrics.request(label, "inbound", "busy");
            self.refuse(protocol, channel, DenyReason::RateLimited);
            return;
        }
        let timeout = match protocol {
            Protocol::Login => self.timers.login_timeout,
            Protocol::Circle | Protocol::Invite => self.timers.request_timeout,
        };
        let queued = match protocol {
            Protocol::Login => match LoginChallenge::decode_bytes(&request) {
                Err(_) => Err(DenyReason::Invalid),
                Ok(challenge) => {
                    let (tx, rx) = oneshot::channel::<LoginResponse>();
                    let event = NodeEvent::Login {
                        peer,
                        challenge,
                        responder: Responder { tx },
                    };
                    if self.emit(event) {
                        Ok(Box::pin(async move {
                            let answer = match tokio::time::timeout(timeout, rx).await {
                                Ok(Ok(r)) => r,
                                Ok(Err(_)) => LoginResponse::Denied(DenyReason::Invalid),
                                Err(_) => LoginResponse::Denied(DenyReason::Expired),
                            };
                            Some(answer.to_cbor())
                        })
                            as futures::future::BoxFuture<'static, Option<Vec<u8>>>)
                    } else {
                        Err(DenyReason::RateLimited)
                    }
                }
            },
            Protocol::Circle | Protocol::Invite => {
                match Envelope::from_cbor(&request, protocols::max_request(protocol)) {
                    Err(_) => Err(DenyReason::Invalid),
                    Ok(message) => {
                        let (tx, rx) = oneshot::channel::<Envelope>();
                        let responder = Responder { tx };
                        let event = if protocol == Protocol::Circle {
                            NodeEvent::Circle {
                                peer,
                                message,
                                responder,
                            }
                        } else {
                            NodeEvent::Invite {
                                peer,
                                message,
                                responder,
                            }
                        };
                        if self.emit(event) {
                            Ok(Box::pin(async move {
                                match tokio::time::timeout(timeout, rx).await {
                                    Ok(Ok(e)) => Some(e.to_cbor()),
                                    _ => None,
                                }
                            })
                                as futures::future::BoxFuture<'static, Option<Vec<u8>>>)
                        } else {
                            Err(DenyReason::RateLimited)
                        }
                    }
                }
            }
        };
        match queued {
            Ok(answer) => {
                self.inbound.push(Box::pin(async move {
                    InboundDone {
                        protocol,
                        peer,
                        channel,
                        answer: answer.await,
                    }
                }));
            }
            Err(why) => {
                self.inflight.end(&key);
                let outcome = if why == DenyReason::Invalid {
                    "malformed"
                } else {
                    "busy"
                };
                self.metrics.request(label, "inbound", outcome);
                self.refuse(protocol, channel, why);
            }
        }
    }

    pub(crate) fn on_inbound_done(&mut self, done: InboundDone) {
        let label = done.protocol.label();
        self.inflight.end(&(done.protocol, done.peer));
        match done.answer {
            Some(bytes) if bytes.len() <= protocols::max_response(done.protocol) => {
                let sent = self
                    .swarm
                    .behaviour_mut()
                    .protocol(done.protocol)
                    .send_response(done.channel, bytes)
                    .is_ok();
                self.metrics
                    .request(label, "inbound", if sent { "answered" } else { "closed" });
            }
            _ => self.metrics.request(label, "inbound", "unanswered"),
        }
    }
}
