//! Framing: a 4-byte big-endian length, then that many bytes of JSON, under
//! a size cap for each direction.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use zeroize::Zeroizing;

/// Largest request frame.
pub const MAX_REQUEST: usize = 64 * 1024;
/// Largest reply frame.
pub const MAX_REPLY: usize = 1024 * 1024;

/// A framing error.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed or the socket failed.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// A frame over the size cap.
    #[error("message of {0} bytes is over the limit")]
    TooLarge(usize),
    /// Not a valid message.
    #[error("malformed message: {0}")]
    Malformed(String),
}

/// Writes one frame.
pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    msg: &T,
) -> Result<(), FrameError> {
    let body = serde_json::to_vec(msg).map_err(|e| FrameError::Malformed(e.to_string()))?;
    let len = u32::try_from(body.len()).map_err(|_| FrameError::TooLarge(body.len()))?;
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    w.write_all(&frame).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one frame of at most `max` bytes; `None` when the peer closed
/// cleanly before a frame began.
pub async fn read_frame<R: AsyncRead + Unpin, T: for<'de> Deserialize<'de>>(
    r: &mut R,
    max: usize,
) -> Result<Option<T>, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(FrameError::TooLarge(len));
    }
    let mut body = Zeroizing::new(vec![0u8; len]);
    r.read_exact(&mut body).await?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| FrameError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::proto::Request;

    #[tokio::test]
    async fn frames_round_trip_and_oversized_ones_are_refused() {
        let (mut a, mut b) = tokio::io::duplex(1 << 20);
        let req = Request::Approve {
            id: 3,
            code: 42,
            remember: true,
            auto: false,
        };
        write_frame(&mut a, &req).await.unwrap();
        let got: Request = read_frame(&mut b, MAX_REQUEST).await.unwrap().unwrap();
        assert!(matches!(
            got,
            Request::Approve {
                id: 3,
                code: 42,
                ..
            }
        ));
        // A length over the cap is refused before reading the body.
        a.write_all(&(u32::try_from(MAX_REQUEST).unwrap() + 1).to_be_bytes())
            .await
            .unwrap();
        let e = read_frame::<_, Request>(&mut b, MAX_REQUEST)
            .await
            .unwrap_err();
        assert!(matches!(e, FrameError::TooLarge(_)));
    }
}
