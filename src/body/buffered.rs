use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::ReplayBody;

pin_project! {
    /// A request body after [`BufferBodyLayer`](super::BufferBodyLayer):
    /// either fully in memory (replayable) or the original stream (sent once).
    pub struct BufferedBody<B>
    where
        B: Body,
    {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B>
    where
        B: Body,
    {
        // Fully read: data and trailers, replayable.
        Full { data: Option<Bytes>, trailers: Option<HeaderMap> },
        // Over the cap: the frames already read, then the rest of the stream.
        Passthrough { read: VecDeque<Frame<Bytes>>, #[pin] rest: Option<B> },
        // The body failed while being read: the error, delivered once.
        Failed { error: Option<<B as Body>::Error> },
    }
}

impl<B: Body> BufferedBody<B> {
    pub(crate) fn full(data: Bytes, trailers: Option<HeaderMap>) -> Self {
        let data = (!data.is_empty()).then_some(data);
        BufferedBody {
            kind: Kind::Full { data, trailers },
        }
    }

    pub(crate) fn passthrough(read: VecDeque<Frame<Bytes>>, rest: Option<B>) -> Self {
        BufferedBody {
            kind: Kind::Passthrough { read, rest },
        }
    }

    pub(crate) fn failed(error: B::Error) -> Self {
        BufferedBody {
            kind: Kind::Failed { error: Some(error) },
        }
    }

    /// Whether the body is held in memory (and so can be replayed).
    pub fn is_buffered(&self) -> bool {
        matches!(self.kind, Kind::Full { .. })
    }
}

/// A frame of any `Buf` as a frame of `Bytes` (no copy when it already is `Bytes`).
pub(crate) fn to_bytes_frame<D: bytes::Buf>(frame: Frame<D>) -> Frame<Bytes> {
    frame.map_data(|mut d| d.copy_to_bytes(d.remaining()))
}

impl<B: Body> std::fmt::Debug for BufferedBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Full { data, .. } => {
                format!("Full({} bytes)", data.as_ref().map_or(0, Bytes::len))
            }
            Kind::Passthrough { .. } => "Passthrough".to_string(),
            Kind::Failed { .. } => "Failed".to_string(),
        };
        f.debug_tuple("BufferedBody").field(&kind).finish()
    }
}

impl<B: Body> ReplayBody for BufferedBody<B> {
    fn try_clone_body(&self) -> Option<Self> {
        match &self.kind {
            Kind::Full { data, trailers } => Some(BufferedBody {
                kind: Kind::Full {
                    data: data.clone(),
                    trailers: trailers.clone(),
                },
            }),
            _ => None,
        }
    }
}

impl<B: Body> Body for BufferedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Full { data, trailers } => {
                if let Some(data) = data.take() {
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Poll::Ready(trailers.take().map(|t| Ok(Frame::trailers(t))))
            }
            KindProj::Passthrough { read, mut rest } => {
                if let Some(frame) = read.pop_front() {
                    return Poll::Ready(Some(Ok(frame)));
                }
                let Some(body) = rest.as_mut().as_pin_mut() else {
                    return Poll::Ready(None);
                };
                match body.poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(to_bytes_frame(frame)))),
                    Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
                    Poll::Ready(None) => Poll::Ready(None),
                    Poll::Pending => Poll::Pending,
                }
            }
            KindProj::Failed { error } => Poll::Ready(error.take().map(Err)),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full { data, trailers } => data.is_none() && trailers.is_none(),
            Kind::Passthrough { read, rest } => {
                read.is_empty() && rest.as_ref().is_none_or(|b| b.is_end_stream())
            }
            Kind::Failed { error } => error.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full { data, .. } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            Kind::Passthrough { read, rest } => {
                let buffered: u64 = read
                    .iter()
                    .filter_map(|f| f.data_ref().map(|d| d.len() as u64))
                    .sum();
                let rest = rest
                    .as_ref()
                    .map_or_else(|| SizeHint::with_exact(0), Body::size_hint);
                // Built afresh: `set_upper` below `lower` would panic.
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower().saturating_add(buffered));
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper.saturating_add(buffered));
                }
                hint
            }
            Kind::Failed { .. } => SizeHint::default(),
        }
    }
}
