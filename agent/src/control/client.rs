//! The client side of the control socket, used by every CLI command (and
//! by programs that link this crate).

use std::path::PathBuf;

use thiserror::Error;
use tokio::net::UnixStream;

use super::proto::{
    ErrorCode, ErrorReply, FrameError, MAX_REPLY, Reply, Request, read_frame, write_frame,
};
use crate::home::Home;

/// Why a call failed.
#[derive(Debug, Error)]
pub enum ClientError {
    /// Nothing listens on the socket.
    #[error("the agent is not running (no daemon at {path}); start it with `cyrcles daemon`")]
    NotRunning {
        /// The socket path.
        path: PathBuf,
    },
    /// The socket exists but this user may not use it.
    #[error("permission denied on {path}: the agent there belongs to another user")]
    Forbidden {
        /// The socket path.
        path: PathBuf,
    },
    /// The connection failed mid-way.
    #[error("lost the connection to the agent: {0}")]
    Frame(#[from] FrameError),
    /// The daemon answered with an error.
    #[error("{0}")]
    Daemon(ErrorReply),
    /// The daemon answered something this client does not expect.
    #[error("unexpected answer from the agent: {0}")]
    Unexpected(String),
}

impl ClientError {
    /// The CLI's exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::NotRunning { .. } => 3,
            ClientError::Forbidden { .. } => 9,
            ClientError::Frame(_) | ClientError::Unexpected(_) => 1,
            ClientError::Daemon(e) => e.code.exit_code(),
        }
    }

    /// The daemon's error code, if the daemon answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Daemon(e) => Some(e.code),
            _ => None,
        }
    }
}

/// A connection to the daemon.
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
}

impl Client {
    /// Connects to the daemon of `home`.
    pub async fn connect(home: &Home) -> Result<Self, ClientError> {
        let path = home.socket_path();
        match UnixStream::connect(&path).await {
            Ok(stream) => Ok(Self { stream }),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                Err(ClientError::NotRunning { path })
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                Err(ClientError::Forbidden { path })
            }
            Err(e) => Err(ClientError::Frame(FrameError::Io(e))),
        }
    }

    /// Sends the request.
    pub async fn send(&mut self, request: &Request) -> Result<(), ClientError> {
        match write_frame(&mut self.stream, request).await {
            Ok(()) => Ok(()),
            // The daemon may have answered and closed before reading (it
            // refuses other users at once): its answer says why.
            Err(e) => match self.next().await {
                Err(daemon @ ClientError::Daemon(_)) => Err(daemon),
                _ => Err(e.into()),
            },
        }
    }

    /// The next reply; `None` once the daemon has closed the connection.
    /// Error replies come back as [`ClientError::Daemon`].
    pub async fn next(&mut self) -> Result<Option<Reply>, ClientError> {
        match read_frame::<_, Reply>(&mut self.stream, MAX_REPLY).await? {
            Some(Reply::Error(e)) => Err(ClientError::Daemon(e)),
            other => Ok(other),
        }
    }

    /// Sends one request and reads its one reply.
    pub async fn call(home: &Home, request: &Request) -> Result<Reply, ClientError> {
        let mut c = Self::connect(home).await?;
        c.send(request).await?;
        c.next()
            .await?
            .ok_or_else(|| ClientError::Unexpected("the agent closed the connection".into()))
    }
}
