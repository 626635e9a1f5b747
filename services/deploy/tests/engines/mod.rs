//! One test case per database engine: `engine_tests!(name, ...)` turns each `async fn
//! name(engine: Engine)` into the tests `name::sqlite` and `name::postgres`, so a failure on one
//! engine never hides the other's result.

macro_rules! engine_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn sqlite() {
                    super::$name(goterra_db::Engine::Sqlite).await;
                }

                #[tokio::test]
                async fn postgres() {
                    super::$name(goterra_db::Engine::Postgres).await;
                }
            }
        )*
    };
}
pub(crate) use engine_tests;
