//! Identity schemas: loading, traits validation, the ory.sh/kratos extension, UI nodes for traits.
