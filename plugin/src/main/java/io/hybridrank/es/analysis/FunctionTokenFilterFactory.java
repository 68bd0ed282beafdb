package io.hybridrank.es.analysis;

import org.apache.lucene.analysis.TokenStream;
import org.elasticsearch.index.analysis.AbstractTokenFilterFactory;

import java.util.function.UnaryOperator;

/** A token filter factory that wraps the stream with one fixed Lucene filter. */
final class FunctionTokenFilterFactory extends AbstractTokenFilterFactory {

    private final UnaryOperator<TokenStream> filter;

    FunctionTokenFilterFactory(String name, UnaryOperator<TokenStream> filter) {
        super(name);
        this.filter = filter;
    }

    @Override
    public TokenStream create(TokenStream tokenStream) {
        return filter.apply(tokenStream);
    }
}
