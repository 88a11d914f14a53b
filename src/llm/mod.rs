//! The LLM (any OpenAI-compatible API, through async-openai): understanding free-form messages
//! when the rules NLU is not sure, and optionally phrasing replies. It only ever proposes; the
//! flow decides. Built in the LLM issue; with no OPENAI_API_KEY nothing here is used.
