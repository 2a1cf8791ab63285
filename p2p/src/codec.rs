//! The request-response codec shared by every Cyrcles protocol: a request
//! is the whole content of a fresh stream, up to the writer closing its
//! side; so is the response. Each protocol caps both sizes; a peer that
//! sends more gets its stream reset and nothing is allocated beyond the cap.
//! An empty message is never valid: a stream closed without content means
//! the other side refused to answer.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response;

/// Reads and writes whole-stream byte messages under size caps.
#[derive(Debug, Clone, Copy)]
pub struct BytesCodec {
    /// Largest request accepted.
    pub max_request: usize,
    /// Largest response accepted.
    pub max_response: usize,
}

async fn read_capped<T: AsyncRead + Unpin + Send>(io: &mut T, cap: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    // One byte over the cap tells an oversized message from one at the cap.
    let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
    io.take(limit).read_to_end(&mut buf).await?;
    if buf.is_empty() {
        // No message of any protocol is empty: a stream closed without
        // content is a refusal, not an answer.
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "stream closed without a message",
        ));
    }
    if buf.len() > cap {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message larger than {cap} bytes"),
        ));
    }
    Ok(buf)
}

async fn write_all<T: AsyncWrite + Unpin + Send>(io: &mut T, data: &[u8]) -> io::Result<()> {
    io.write_all(data).await?;
    io.close().await
}

impl request_response::Codec for BytesCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_capped(io, self.max_request).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_capped(io, self.max_response).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        if req.len() > self.max_request {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "request too large",
            ));
        }
        write_all(io, &req).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        if res.len() > self.max_response {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "response too large",
            ));
        }
        write_all(io, &res).await
    }
}
