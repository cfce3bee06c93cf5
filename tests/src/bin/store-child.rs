//! `store-child`: see `switchboard_tests::store_child`.

fn main() {
    switchboard_tests::store_child::run();
}
